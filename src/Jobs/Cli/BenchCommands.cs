using System.CommandLine;
using Pipeline.Stages.Data;
using Pipeline.Stages.Models;

namespace Pipeline.Jobs.Cli;

/// <summary>`pipeline bench …`: measurements printed on this machine (bench/README.md records them).</summary>
public static class BenchCommands
{
    private static Command Models()
    {
        var inputSize = new Option<int>("--input-size") { Description = "Input size in pixels", DefaultValueFactory = _ => 64 };
        var batch = new Option<int>("--batch") { Description = "Batch size", DefaultValueFactory = _ => 64 };
        var threads = new Option<int>("--threads") { Description = "Torch CPU threads", DefaultValueFactory = _ => 2 };
        var presets = new Option<string?>("--presets") { Description = "Comma-separated presets (default: all)" };
        var repeats = new Option<int>("--repeats") { Description = "Timed iterations after one warm-up; the median is reported", DefaultValueFactory = _ => 3 };
        var cmd = new Command("models", "Images/s of forward and forward+backward for each model preset (full unroll)") { inputSize, batch, threads, presets, repeats };
        cmd.SetAction(p =>
        {
            TorchSharp.torch.set_num_threads(p.GetValue(threads));
            var names = p.GetValue(presets)?.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries) ?? [.. ModelPresets.Names];
            Console.WriteLine($"machine: {Environment.ProcessorCount} cores; torch threads {p.GetValue(threads)}; input {p.GetValue(inputSize)} px, batch {p.GetValue(batch)}, 1000 classes");
            Console.WriteLine($"{"preset",-26} {"parameters",12} {"T",4} {"forward img/s",14} {"fwd+bwd img/s",14}");
            foreach (var name in names)
            {
                var r = ModelBenchmark.Run(name, p.GetValue(inputSize), p.GetValue(batch), repeats: p.GetValue(repeats));
                Console.WriteLine($"{r.Preset,-26} {r.Parameters,12:N0} {r.Steps,4} {r.ForwardImagesPerSecond,14:F1} {r.TrainImagesPerSecond,14:F1}");
            }
            return CliOutput.Ok;
        });
        return cmd;
    }

    public static Command Build()
    {
        var synthetic = new Option<int>("--synthetic-images") { Description = "Synthetic images per repeat (64 px)", DefaultValueFactory = _ => 2000 };
        var jpegs = new Option<int>("--jpeg-images") { Description = "Generated 256x192 JPEGs per repeat (resized to short side 128)", DefaultValueFactory = _ => 1000 };
        var repeats = new Option<int>("--repeats") { Description = "Repeats; the median is reported", DefaultValueFactory = _ => 3 };
        var shard = new Command("shard", "Sharding throughput: the synthetic set and a folder of JPEGs") { synthetic, jpegs, repeats };
        shard.SetAction(async (p, ct) =>
        {
            Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {Environment.OSVersion}, .NET {Environment.Version}");
            var results = await ShardBenchmark.RunAsync(p.GetValue(synthetic), p.GetValue(jpegs), p.GetValue(repeats), ct: ct);
            Console.WriteLine($"{"case",-28} {"images",7} {"median s",9} {"images/s",9}  threads  detail");
            foreach (var r in results)
            {
                Console.WriteLine($"{r.Name,-28} {r.Images,7} {r.MedianSeconds,9:F2} {r.ImagesPerSecond,9:F0}  {r.Threads,7}  {r.Detail}");
            }
            return CliOutput.Ok;
        });
        return new Command("bench", "Measure throughput on this machine") { shard, Models() };
    }
}
