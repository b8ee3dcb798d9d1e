using System.Globalization;
using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Pipeline.Jobs.Engine;
using Pipeline.Jobs.Hosting;
using Pipeline.Jobs.RunSpecs;
using Pipeline.Stages;
using Pipeline.Stages.Artifacts;
using Pipeline.Stages.Data;
using Pipeline.Stages.Models;
using Pipeline.Stages.NeuralFit;
using Pipeline.Jobs.Runs;

namespace Pipeline.Jobs.Cli;

/// <summary>`pipeline bench …`: measurements printed on this machine (bench/README.md records them).</summary>
public static class BenchCommands
{
    /// <summary>Parent → child hand-off latency on PostgreSQL, long polling against the queue poll alone (<see cref="HandoffBench"/>).</summary>
    private static Command Handoff()
    {
        var rounds = new Option<int>("--rounds") { Description = "Worker processes started per side (alternating sides)", DefaultValueFactory = _ => 4 };
        var runs = new Option<int>("--runs") { Description = "Fan-out/fan-in runs per worker process; the first is a warm-up", DefaultValueFactory = _ => 4 };
        var branches = new Option<int>("--branches") { Description = "Parallel stages between the source and the join", DefaultValueFactory = _ => 6 };
        var seconds = new Option<double>("--seconds") { Description = "How long each branch works", DefaultValueFactory = _ => 0.3 };
        var cmd = new Command("handoff", "Median and p95 of the gap between a stage ending and its dependent starting (PostgreSQL, a separate worker process)")
            { rounds, runs, branches, seconds };
        cmd.SetAction(async (p, ct) =>
        {
            if (p.GetValue(rounds) < 1 || p.GetValue(runs) < 2 || p.GetValue(branches) is < 1 or > 60 || p.GetValue(seconds) is < 0 or > 60)
                return CliOutput.Error("--rounds must be at least 1, --runs at least 2 (the first is a warm-up), --branches 1–60 and --seconds 0–60.");
            Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}; load {Load()}; " +
                              $"{p.GetValue(rounds)} round(s) × {p.GetValue(runs) - 1} measured run(s) per side, {p.GetValue(branches)} branches of {p.GetValue(seconds)} s");
            IReadOnlyList<HandoffBench.Side> sides;
            try
            {
                sides = await new HandoffBench(p.GetValue(rounds), p.GetValue(runs), p.GetValue(branches), p.GetValue(seconds), Console.Out).RunAsync(ct);
            }
            catch (InvalidOperationException e)
            {
                return CliOutput.Error(e.Message);
            }
            Console.WriteLine($"{"side",-16} {"gaps",5} {"median ms",10} {"p95 ms",8} {"max ms",8}");
            foreach (var s in sides)
            {
                Console.WriteLine(FormattableString.Invariant(
                    $"{s.Name,-16} {s.GapsMs.Count,5} {HandoffBench.Percentile(s.GapsMs, 0.5),10:F1} {HandoffBench.Percentile(s.GapsMs, 0.95),8:F1} {s.GapsMs.DefaultIfEmpty(double.NaN).Max(),8:F1}"));
            }
            var (fast, slow) = (sides[0], sides[1]);
            var (median, p95) = (HandoffBench.Percentile(fast.GapsMs, 0.5), HandoffBench.Percentile(fast.GapsMs, 0.95));
            Console.WriteLine(FormattableString.Invariant(
                $"long polling / queue poll: median {median / HandoffBench.Percentile(slow.GapsMs, 0.5):F2}×, p95 {p95 / HandoffBench.Percentile(slow.GapsMs, 0.95):F2}×; target median < 50 ms and p95 < 150 ms: {(median < 50 && p95 < 150 ? "met" : "missed")}"));
            return CliOutput.Ok;
        });
        return cmd;
    }

    private static string Load() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "unknown";

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

    /// <summary>
    /// Runs a preset's stages for real in this process (no cache), then sets each train stage's measured images/s beside
    /// the same model's compute-only training throughput on in-memory random batches, measured right after in the same
    /// process: the ratio shows what the data pipeline, metrics and checkpoints cost.
    /// </summary>
    private static Command Train()
    {
        var preset = new Option<string>("--preset") { Description = "Preset (or RunSpec file) with train stages", DefaultValueFactory = _ => "smoke" };
        var set = new Option<string[]>("--set") { Description = "Override a RunSpec field: key.path=value (repeatable)" };
        var cmd = new Command("train", "Train a preset's models; print images/s, input-wait fraction and the compute-only reference") { preset, set };
        cmd.SetAction(async (p, ct) =>
        {
            using var host = PipelineHost.Build(worker: true);
            await host.StartAsync(ct);
            try
            {
                var (runId, _) = await host.Services.GetRequiredService<RunLauncher>()
                    .LaunchPresetAsync(p.GetValue(preset)!, p.GetValue(set), noCache: true, allowPaths: true, ct: ct);
                var run = await RunWaiter.WaitAsync(host.Services.GetRequiredService<RunQueries>(), runId, quiet: true, ct);
                if (run.Status != RunStore.RunStatus.Succeeded)
                {
                    CliOutput.PrintRun(run);
                    return CliOutput.RunFailed;
                }
                var store = host.Services.GetRequiredService<IArtifactStore>();
                Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {Environment.OSVersion}, .NET {Environment.Version}; run {runId} ({run.Name})");
                Console.WriteLine($"{"stage",-14} {"model",-14} {"parameters",11} {"T",3} {"top-1",7} {"train img/s",12} {"input wait",11} {"compute-only img/s",19} {"ratio",6} {"eval img/s",11} {"wall s",7}");
                foreach (var stage in run.Stages.Where(s => s.Kind == "train"))
                {
                    var metrics = await ReadJsonAsync(store, stage.Artifacts.Single(a => a.Path.EndsWith("/metrics.json", StringComparison.Ordinal)).Path, ct);
                    var sidecar = await ReadJsonAsync(store, stage.Artifacts.Single(a => a.Path.EndsWith("/model.safetensors.json", StringComparison.Ordinal)).Path, ct);
                    var spec = sidecar["spec"].Deserialize<ModelSpec>(PipelineJson.Options)!;
                    var batch = (int)metrics["batch_size"]!;
                    var threads = (int)metrics["threads"]!;
                    TorchSharp.torch.set_num_threads(threads);
                    var reference = ModelBenchmark.Run(spec, batch, repeats: 5);
                    var trainRate = (double)metrics["train_images_per_second"]!;
                    Console.WriteLine($"{stage.Name,-14} {spec.Name,-14} {(long)metrics["parameters"]!,11:N0} {(int)metrics["time_steps"]!,3} {(double)metrics["top1"]!,7:P1} {trainRate,12:F1} {(double)metrics["input_wait_fraction"]!,11:P1} {reference.TrainImagesPerSecond,19:F1} {trainRate / reference.TrainImagesPerSecond,6:F2} {(double)metrics["eval_images_per_second"]!,11:F1} {(double)metrics["wall_seconds"]!,7:F1}");
                }
                Console.WriteLine("compute-only: forward + backward + SGD on random in-memory batches of the same model, batch and threads (median of 5).");
                return CliOutput.Ok;
            }
            finally
            {
                await host.StopAsync(CancellationToken.None);
            }
        });
        return cmd;
    }

    /// <summary>
    /// One HvM-size cross-validated PLS fit (NeuralFit) timed in C#, then the same data and splits fitted by scikit-learn
    /// (bench/reference/neural_fit.py, copied beside the binary) with the same thread budget.
    /// </summary>
    private static Command Neural()
    {
        var stimuli = new Option<int>("--stimuli") { Description = "Stimuli (64 objects)", DefaultValueFactory = _ => 5760 };
        var features = new Option<int>("--features") { Description = "Model features D", DefaultValueFactory = _ => 1000 };
        var sites = new Option<int>("--sites") { Description = "Recording sites", DefaultValueFactory = _ => 256 };
        var splits = new Option<int>("--splits") { Description = "Stratified 90/10 splits", DefaultValueFactory = _ => 10 };
        var components = new Option<int>("--components") { Description = "PLS components", DefaultValueFactory = _ => 25 };
        var threads = new Option<int>("--threads") { Description = "Torch CPU threads (and BLAS threads for Python)", DefaultValueFactory = _ => 2 };
        var seed = new Option<long>("--seed") { Description = "Seed of the synthetic data and the splits", DefaultValueFactory = _ => 0 };
        var reference = new Option<string>("--reference") { Description = "The scikit-learn script", DefaultValueFactory = _ => Path.Combine(AppContext.BaseDirectory, "bench", "reference", "neural_fit.py") };
        var cmd = new Command("neural", "Cross-validated PLS neural fit: C# (TorchSharp) against scikit-learn on the same synthetic data") { stimuli, features, sites, splits, components, threads, seed, reference };
        cmd.SetAction(async (p, ct) =>
        {
            Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {Environment.OSVersion}, .NET {Environment.Version}; torch threads {p.GetValue(threads)}");
            var r = await NeuralFitBenchmark.RunAsync(p.GetValue(reference)!, p.GetValue(stimuli), p.GetValue(features), p.GetValue(sites), p.GetValue(splits), p.GetValue(components), p.GetValue(threads), p.GetValue(seed), ct: ct);
            Console.WriteLine($"problem: {r.Stimuli} stimuli x {r.Features} features -> {r.Sites} sites, {r.Splits} splits, PLS {r.Components} components");
            Console.WriteLine($"{"implementation",-16} {"seconds",9} {"median r",9}  detail");
            Console.WriteLine($"{"C# TorchSharp",-16} {r.CSharpSeconds,9:F2} {r.CSharpScore,9:F4}  {r.TotalIterations} NIPALS iterations in all");
            if (r.SklearnError is not null)
            {
                Console.WriteLine($"scikit-learn: {r.SklearnError}");
                return CliOutput.RunFailed;
            }
            Console.WriteLine($"{"scikit-learn",-16} {r.SklearnSeconds,9:F2} {r.SklearnScore,9:F4}  {r.NipalsAtMaxIterations} (split, component) pairs at max_iter");
            Console.WriteLine($"speed-up {r.Speedup:F1}x; max |r difference| over splits and sites {r.MaxRDifference:E2}");
            return CliOutput.Ok;
        });
        return cmd;
    }

    private static async Task<JsonNode> ReadJsonAsync(IArtifactStore store, string path, CancellationToken ct)
    {
        await using var stream = await store.OpenReadAsync(path, ct: ct);
        return (await JsonNode.ParseAsync(stream, cancellationToken: ct))!;
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
        return new Command("bench", "Measure throughput on this machine") { shard, Models(), Train(), Neural(), Handoff() };
    }
}
