using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Mediator;
using TorchSharp;
using Microsoft.Extensions.Logging;
using Pipeline.Stages.Data;
using Pipeline.Stages.Execution;
using Pipeline.Stages.Models;
using Pipeline.Stages.Models.Checkpoints;
using Pipeline.Stages.Training;
using static TorchSharp.torch;

namespace Pipeline.Stages.Sweeps;

/// <summary>
/// How a trained model's accuracy depends on time (the paper's time-step analysis): at every readout step of the
/// training presentation, for unroll lengths from the minimal T to <see cref="TimestepSweepParams.MaxSteps"/>, for
/// image durations 1 … T, and for each readout rule — with the baselines' accuracies beside it.
/// </summary>
[Stage("timestep-sweep", StageQueues.Gpu, 1)]
public sealed record TimestepSweepStage(TimestepSweepParams Params, StageContext Context) : IStageRequest<TimestepSweepParams>;

/// <summary>
/// One unrolled pass per presentation (image-off step): the training one, unrolled to the longest T, and one of the
/// training T for every other image duration. Readout steps, unroll lengths and readout rules are read from the passes'
/// logits (<see cref="StepLogits"/>), never recomputed.
/// </summary>
public sealed class TimestepSweepHandler : IRequestHandler<TimestepSweepStage, StageResult>
{
    public const string JsonFile = "timestep_sweep.json";
    public const string CsvFile = "timestep_sweep.csv";

    /// <summary>One step of the unroll stands for 10 ms of viewing (CONVRNN.md "Time").</summary>
    public const double StepMs = 10;

    public async ValueTask<StageResult> Handle(TimestepSweepStage request, CancellationToken cancellationToken)
    {
        var (p, context) = (request.Params, request.Context);
        var ct = cancellationToken;
        var log = context.Logger;
        var wall = Stopwatch.StartNew();
        var device = ComputeDevice.Resolve(p.Device);

        var stage = ChooseModel(p, context);
        var manifest = await ReadManifestAsync(context, ct);
        var modelPath = await TrainedModels.DownloadAsync(context, stage, "model", ct);
        var baselinePaths = new List<(string Stage, string Path)>();
        foreach (var b in p.Baselines) baselinePaths.Add((b, await TrainedModels.DownloadAsync(context, b, "baselines", ct)));

        using var trained = TrainedModels.Load(modelPath);
        var spec = trained.Spec;
        CheckFits(spec, manifest, stage);
        var trainingSteps = trained.DefaultSteps;
        var feedforward = trainingSteps == 1 && trained.MinimalSteps == 1 || trained is ConvRnnModel { IsFeedforward: true };
        var imageSteps = Math.Min(spec.Time.ImageOff ?? trainingSteps, trainingSteps);
        var maxSteps = feedforward ? 1 : Math.Max(p.MaxSteps ?? 2 * trainingSteps, trainingSteps);
        var minimalSteps = Math.Min(trained.MinimalSteps, trainingSteps);
        if (feedforward) (trainingSteps, imageSteps, minimalSteps) = (1, 1, 1);

        var reader = new ShardReader(context.Store, manifest, Path.Combine(context.ScratchFolder, "shards"));
        var normalization = await TrainedNormalizationAsync(context, stage, manifest.Image.Channels, ct);
        var options = new BatchLoaderOptions
        {
            Split = ShardSplitName.Val,
            BatchSize = p.BatchSize,
            ImageSize = spec.InputSize,
            Channels = manifest.Image.Channels,
            Normalization = normalization,
            Train = false,
            Seed = 0,
            MaxSamples = p.EvalMaxSamples,
            DecodeThreads = p.DecodeThreads,
        };
        var images = Math.Min(manifest.Val.Count, p.EvalMaxSamples ?? int.MaxValue);

        // The passes: the training presentation unrolled to the longest T, then every other image duration at the training T.
        var durations = feedforward ? [] : Enumerable.Range(1, trainingSteps).Where(k => k != imageSteps).ToList();
        var passes = new List<(string Name, int Steps, int? ImageOff, string? Baseline)> { ("training presentation", maxSteps, imageSteps, null) };
        passes.AddRange(durations.Select(k => ($"image off after {k}", trainingSteps, (int?)k, (string?)null)));
        var baselineModels = new List<(string Stage, IVisionModel Model)>();
        try
        {
            foreach (var (b, path) in baselinePaths)
            {
                var model = TrainedModels.Load(path);
                baselineModels.Add((b, model));
                CheckFits(model.Spec, manifest, b);
                passes.Add(($"baseline {b}", model.DefaultSteps, null, b));
            }
            log.LogInformation("Sweeping {Model} ({Stage}, T {Steps}, image on for {ImageSteps} steps, minimal T {Minimal}) to T {Max} over {Durations} image durations on {Images} validation images; baselines: {Baselines}; {Device}",
                spec.Name, stage, trainingSteps, imageSteps, minimalSteps, maxSteps, durations.Count + 1, images, p.Baselines.Count == 0 ? "none" : string.Join(", ", p.Baselines), device);

            var progress = new SweepProgress(context.Progress, passes.Select(x => (long)x.Steps * images).ToList());
            var logits = new Dictionary<int, StepLogits>();
            var baselineLogits = new Dictionary<string, StepLogits>();
            try
            {
                for (var i = 0; i < passes.Count; i++)
                {
                    var pass = passes[i];
                    var clock = Stopwatch.StartNew();
                    StepLogits result;
                    if (pass.Baseline is { } b)
                    {
                        var model = baselineModels.Single(m => m.Stage == b).Model;
                        model.Module.to(device);
                        result = await StepLogits.EvaluateAsync(model, pass.Steps, reader, options, n => progress.Advance(i, n * pass.Steps, pass.Name), ct);
                        baselineLogits[b] = result;
                    }
                    else
                    {
                        using var model = TrainedModels.Load(modelPath, spec.Time with { Steps = pass.Steps, ImageOff = pass.ImageOff });
                        model.Module.to(device);
                        result = await StepLogits.EvaluateAsync(model, pass.Steps, reader, options, n => progress.Advance(i, n * pass.Steps, pass.Name), ct);
                        logits[pass.ImageOff ?? 0] = result;
                    }
                    log.LogInformation("Pass {Pass}/{Passes} ({Name}, T {Steps}) took {Seconds:F1} s", i + 1, passes.Count, pass.Name, pass.Steps, clock.Elapsed.TotalSeconds);
                }

                var sweep = Tabulate(p, stage, trained, spec, feedforward, trainingSteps, imageSteps, minimalSteps, maxSteps, manifest.Classes.Count,
                    logits, baselineModels.Select(m => (m.Stage, m.Model, baselineLogits[m.Stage])).ToList());
                return await WriteOutputsAsync(context, sweep, device, wall.Elapsed, ct);
            }
            finally
            {
                foreach (var l in logits.Values.Concat(baselineLogits.Values)) l.Dispose();
            }
        }
        finally
        {
            foreach (var (_, model) in baselineModels) model.Dispose();
        }
    }

    /// <summary>The swept model's dependency: named by <c>model</c>, or the only train dependency not a baseline.</summary>
    private static string ChooseModel(TimestepSweepParams p, StageContext context)
    {
        if (p.Model is { } named) return named;
        var candidates = TrainedModels.ProvidersOf(context).Except(p.Baselines).ToList();
        return candidates.Count switch
        {
            1 => candidates[0],
            0 => throw new StageInputException($"params.model: stage '{context.StageName}' depends on no train stage to sweep (dependencies: {string.Join(", ", context.Inputs.Keys)}); add the train stage to depends_on."),
            _ => throw new StageInputException($"params.model: stage '{context.StageName}' depends on several train stages ({string.Join(", ", candidates)}); name the one to sweep in 'model' and list the others in 'baselines'."),
        };
    }

    private static async Task<ShardManifest> ReadManifestAsync(StageContext context, CancellationToken ct)
    {
        var info = context.FindInput(ShardManifest.FileName) ?? throw new StageInputException(
            $"Stage '{context.StageName}' needs the validation shards of the model: add the shard stage it was trained on to depends_on (dependencies: {string.Join(", ", context.Inputs.Keys)}).");
        try
        {
            return await ShardManifest.ReadAsync(context.Store, info.Path, info.Sha256, ct);
        }
        catch (Exception e) when (BatchLoader.IsBadShard(e))
        {
            throw new StageInputException($"The shard manifest '{info.Path}' could not be read: {e.Message} Re-run the shard stage.", e);
        }
    }

    /// <summary>The shards must be the ones the model can read: its classes and channels.</summary>
    private static void CheckFits(ModelSpec spec, ShardManifest manifest, string stage)
    {
        if (spec.Classes != manifest.Classes.Count || spec.InChannels != manifest.Image.Channels)
            throw new StageInputException($"The model of '{stage}' ({spec.Name}) has {spec.Classes} classes and {spec.InChannels} input channel(s), the shards {manifest.Classes.Count} classes and {manifest.Image.Channels} channel(s): depend on the shard stage it was trained on.");
    }

    /// <summary>The normalisation the train stage recorded in its metrics (train stages before it recorded none used the default).</summary>
    private static async Task<ImageNormalization> TrainedNormalizationAsync(StageContext context, string stage, int channels, CancellationToken ct)
    {
        if (context.InputsOf(stage).FirstOrDefault(a => a.Path.EndsWith("/metrics.json", StringComparison.Ordinal)) is { } metrics)
        {
            await using var stream = await context.Store.OpenReadAsync(metrics.Path, metrics.Sha256, ct);
            if ((await JsonNode.ParseAsync(stream, cancellationToken: ct))?["normalization"] is { } node)
                return node.Deserialize<ImageNormalization>(PipelineJson.Options) ?? ImageNormalization.Default(channels);
        }
        return ImageNormalization.Default(channels);
    }

    private static TimestepSweep Tabulate(TimestepSweepParams p, string stage, IVisionModel trained, ModelSpec spec, bool feedforward,
        int trainingSteps, int imageSteps, int minimalSteps, int maxSteps, int classes, Dictionary<int, StepLogits> logits,
        IReadOnlyList<(string Stage, IVisionModel Model, StepLogits Logits)> baselines)
    {
        using var scope = NewDisposeScope();
        var topFive = Accuracy.ReportsTopFive(classes);
        var main = logits[imageSteps];
        var labels = main.Labels;
        SweepAccuracy Of(Tensor l) => SweepAccuracy.Of(l, labels, topFive);
        var rules = TimestepSweep.Rules(p.Threshold);
        var ownRule = TimestepSweep.RuleName(spec.Readout);

        var readoutSteps = Enumerable.Range(0, trainingSteps).Select(t => new ReadoutStepPoint(t, Of(main.Logits[t]))).ToList();
        var unroll = Enumerable.Range(minimalSteps, maxSteps - minimalSteps + 1).Select(steps =>
        {
            var prefix = main.Prefix(steps);
            var byRule = rules.ToDictionary(TimestepSweep.RuleName, r => SweepAccuracy.Of(Readouts.Apply(r, prefix).Logits, labels, false).Top1);
            return new UnrollLengthPoint(steps, Of(OwnReadout(spec.Readout, prefix)), byRule);
        }).ToList();
        var durations = Enumerable.Range(1, trainingSteps)
            .Select(k => new ImageDurationPoint(k, Of(OwnReadout(spec.Readout, (k == imageSteps ? main : logits[k]).Prefix(trainingSteps)))))
            .ToList();
        var atTraining = main.Prefix(trainingSteps);
        var rulePoints = rules.Select(r =>
        {
            var (readout, step) = Readouts.Apply(r, atTraining);
            return new ReadoutRulePoint(TimestepSweep.RuleName(r), Of(readout), step.to(float64).mean().ToDouble());
        }).ToList();
        var baselinePoints = baselines.Select(b => new BaselinePoint(b.Stage, b.Model.Spec.Name, b.Logits.Steps, ModelStats.Parameters(b.Model.Module),
            SweepAccuracy.Of(OwnReadout(b.Model.Spec.Readout, b.Logits.Prefix(b.Logits.Steps)), b.Logits.Labels, topFive))).ToList();
        var peak = readoutSteps.MaxBy(r => r.Accuracy.Top1)!;
        return new TimestepSweep
        {
            Stage = stage,
            Model = spec.Name,
            Feedforward = feedforward,
            Parameters = ModelStats.Parameters(trained.Module),
            TrainingSteps = trainingSteps,
            TrainingImageSteps = imageSteps,
            MinimalSteps = minimalSteps,
            MaxSteps = maxSteps,
            Readout = ownRule,
            Classes = classes,
            Chance = 1.0 / classes,
            Images = main.Images,
            StepMs = StepMs,
            ReadoutStep = readoutSteps,
            UnrollLength = unroll,
            ImageDuration = durations,
            ReadoutRules = rulePoints,
            Baselines = baselinePoints,
            Peak = new SweepPeak(peak.Step, peak.Accuracy.Top1),
        };
    }

    /// <summary>The model's own readout over <paramref name="prefix"/>, its window cut to the steps there are (as <see cref="ConvRnnModel.Unroll"/> does).</summary>
    private static Tensor OwnReadout(ReadoutSpec readout, IReadOnlyList<Tensor> prefix)
    {
        var to = Math.Min(readout.To ?? prefix.Count, prefix.Count);
        return Readouts.Apply(readout with { From = readout.From is { } from ? Math.Min(from, to - 1) : null, To = to }, prefix).Logits;
    }

    private static async Task<StageResult> WriteOutputsAsync(StageContext context, TimestepSweep sweep, Device device, TimeSpan wall, CancellationToken ct)
    {
        await context.WriteJsonAsync(JsonFile, sweep, ct);
        await context.WriteOutputAsync(CsvFile, new MemoryStream(System.Text.Encoding.UTF8.GetBytes(sweep.ToCsv())), ct);
        foreach (var figure in SweepPlots.All(sweep))
        {
            await context.WriteOutputAsync(figure.Name + ".png", new MemoryStream(figure.Png), ct);
            await context.WriteOutputAsync(figure.Name + ".svg", new MemoryStream(System.Text.Encoding.UTF8.GetBytes(figure.Svg)), ct);
        }
        var atTraining = sweep.AtTraining;
        var metrics = new JsonObject
        {
            ["model"] = sweep.Model,
            ["stage"] = sweep.Stage,
            ["training_steps"] = sweep.TrainingSteps,
            ["training_image_steps"] = sweep.TrainingImageSteps,
            ["minimal_steps"] = sweep.MinimalSteps,
            ["max_steps"] = sweep.MaxSteps,
            ["top1"] = atTraining.Top1,
            ["top5"] = atTraining.Top5,
            ["peak_top1"] = sweep.Peak.Top1,
            ["peak_step"] = sweep.Peak.Step,
            ["peak_ms"] = (sweep.Peak.Step + 1) * StepMs,
            ["best_unroll_steps"] = sweep.UnrollLength.MaxBy(u => u.Accuracy.Top1)!.Steps,
            ["best_unroll_top1"] = sweep.UnrollLength.Max(u => u.Accuracy.Top1),
            ["images"] = sweep.Images,
            ["classes"] = sweep.Classes,
            ["wall_seconds"] = wall.TotalSeconds,
            ["device"] = device.type.ToString().ToLowerInvariant(),
            ["threads"] = TorchSharp.torch.get_num_threads(),
        };
        foreach (var b in sweep.Baselines) metrics[$"baseline_top1.{b.Stage}"] = b.Accuracy.Top1;
        if (atTraining.Top5 is null) metrics.Remove("top5");
        await context.WriteJsonAsync("metrics.json", metrics, ct);
        context.Logger.LogInformation("Sweep of {Model}: top-1 {Top1:P1} at T {Steps}; peak {Peak:P1} at readout step {PeakStep}; best unroll T {Best} ({BestTop1:P1})",
            sweep.Model, atTraining.Top1, sweep.TrainingSteps, sweep.Peak.Top1, sweep.Peak.Step, metrics["best_unroll_steps"]!.GetValue<int>(), metrics["best_unroll_top1"]!.GetValue<double>());

        var summary = new JsonObject
        {
            ["model"] = sweep.Model,
            ["top1"] = Math.Round(atTraining.Top1, 4),
            ["peak_top1"] = Math.Round(sweep.Peak.Top1, 4),
            ["peak_step"] = sweep.Peak.Step,
            ["training_steps"] = sweep.TrainingSteps,
            ["images"] = sweep.Images,
        };
        return new StageResult(context.Outputs, summary);
    }

    /// <summary>Progress over all passes, weighted by their image-steps, with an ETA from the rate so far.</summary>
    private sealed class SweepProgress(IStageProgress progress, IReadOnlyList<long> costs)
    {
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private readonly long _total = Math.Max(1, costs.Sum());
        private long _done;

        public void Advance(int pass, long imageSteps, string name)
        {
            _done += imageSteps;
            var fraction = Math.Min(1.0, (double)_done / _total);
            var eta = TimeSpan.FromSeconds(_clock.Elapsed.TotalSeconds / Math.Max(fraction, 1e-9) * (1 - fraction));
            progress.Report(0.98 * fraction, $"pass {pass + 1}/{costs.Count} ({name}), ETA {eta:hh\\:mm\\:ss}");
        }
    }
}
