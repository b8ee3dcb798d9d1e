using System.CommandLine;
using Pipeline.Stages.Data;

namespace Pipeline.Jobs.Cli;

/// <summary>`pipeline bench …`: measurements printed on this machine (bench/README.md records them).</summary>
public static class BenchCommands
{
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
        return new Command("bench", "Measure throughput on this machine") { shard };
    }
}
