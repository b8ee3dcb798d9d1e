using System.Text.Json;
using Pipeline.Stages.Artifacts;
using Pipeline.Stages.Data;
using Pipeline.Stages.Execution;
using Pipeline.Stages.Models;
using Pipeline.Stages.Models.Checkpoints;
using Pipeline.Stages.Sweeps;
using Pipeline.Stages.Tests.Data;
using Pipeline.Stages.Tests.Training;
using Pipeline.Stages.Training;
using static TorchSharp.torch;

namespace Pipeline.Stages.Tests.Sweeps;

/// <summary>
/// One shard stage and two briefly trained models (a narrow rgc-shallow at T 9 with the image off after 6 steps, and a
/// BaseNet), shared by the tests: the sweep is checked against direct evaluations of the same checkpoint.
/// </summary>
public sealed class SweepFixture : IDisposable
{
    public const int Val = 48;

    public SweepFixture()
    {
        var shardContext = Harness.NewContext();
        var shardParams = ShardStageTests.Parse("""{"source": {"num_classes": 6, "image_size": 32, "train_count": 192, "val_count": 48, "occlusion": 0, "clutter": 0}, "shard_max_samples": 64, "threads": 1}""");
        Inputs["shards"] = Run(new ShardHandler(), new ShardStage(shardParams, shardContext)).Artifacts;
        Inputs["rgc"] = Train("""{"preset": "rgc-shallow", "width": 0.25, "time": {"steps": 9, "image_off": 6}}""");
        Inputs["basenet"] = Train("""{"preset": "basenet", "width": 0.25}""");
        Manifest = ShardManifest.ReadAsync(Harness.Store, shardContext.OutputFolder + ShardManifest.FileName).GetAwaiter().GetResult();
    }

    public StageTestHarness Harness { get; } = new();
    public Dictionary<string, IReadOnlyList<ArtifactInfo>> Inputs { get; } = [];
    public ShardManifest Manifest { get; }

    private IReadOnlyList<ArtifactInfo> Train(string model)
    {
        var json = $$"""{"model": {{model}}, "steps": 12, "batch_size": 16, "optimizer": {"kind": "adam", "learning_rate": 0.003, "weight_decay": 0}, "threads": 1, "seed": 3, "metrics_interval_seconds": 0}""";
        var context = Harness.NewContext(inputs: new Dictionary<string, IReadOnlyList<ArtifactInfo>> { ["shards"] = Inputs["shards"] }, stageName: "train");
        return Run(new TrainHandler(), new TrainStage(JsonSerializer.Deserialize<TrainParams>(json, PipelineJson.Options)!, context)).Artifacts;
    }

    public static StageResult Run<TRequest>(Mediator.IRequestHandler<TRequest, StageResult> handler, TRequest request)
        where TRequest : IStageRequest<IStageParams>, Mediator.IRequest<StageResult> =>
        StageTestHarness.RunAsync(handler, request).AsTask().GetAwaiter().GetResult();

    /// <summary>Runs the sweep on the given dependencies; returns its result and its timestep_sweep.json.</summary>
    public (StageResult Result, TimestepSweep Sweep) Sweep(string json, params string[] dependencies)
    {
        var context = Harness.NewContext(inputs: dependencies.ToDictionary(d => d, d => Inputs[d]), stageName: "sweep");
        var result = Run(new TimestepSweepHandler(), new TimestepSweepStage(JsonSerializer.Deserialize<TimestepSweepParams>(json, PipelineJson.Options)!, context));
        using var stream = Harness.Store.OpenReadAsync(result.Artifacts.Single(a => a.Path.EndsWith("/" + TimestepSweepHandler.JsonFile, StringComparison.Ordinal)).Path).GetAwaiter().GetResult();
        return (result, JsonSerializer.Deserialize<TimestepSweep>(stream, PipelineJson.Options)!);
    }

    public void Dispose() => Harness.Dispose();
}

public sealed class TimestepSweepStageTests(SweepFixture f) : IClassFixture<SweepFixture>
{
    [Fact]
    public async Task Every_accuracy_of_the_sweep_equals_a_direct_evaluation_of_the_checkpoint_at_that_setting()
    {
        var (result, sweep) = f.Sweep("""{"baselines": ["basenet"], "max_steps": 12, "threads": 1}""", "rgc", "basenet", "shards");

        Assert.Equal((9, 6, 12, 6), (sweep.TrainingSteps, sweep.TrainingImageSteps, sweep.MaxSteps, sweep.Classes));
        var (images, labels) = await ValidationAsync();
        var path = Path.Combine(f.Harness.NewFolder("direct-" + Guid.NewGuid().ToString("N")), "model.safetensors");
        await DownloadAsync("rgc", path);
        double Direct(int steps, int imageOff, bool last = true)
        {
            using var model = TrainedModels.Load(path, new TimeSpec { Steps = steps, ImageOff = imageOff });
            model.Module.eval();
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var readout = model.Unroll(images, steps).Readout;
            return Accuracy.Hits(readout, labels).Top1 / (double)SweepFixture.Val;
        }

        // (a) readout step t of the training presentation = a pass of t + 1 steps read out at its last step.
        Assert.Equal(Enumerable.Range(0, 9), sweep.ReadoutStep.Select(p => p.Step));
        foreach (var p in sweep.ReadoutStep) Assert.Equal(Direct(p.Step + 1, 6), p.Accuracy.Top1, 10);
        // Under biological unrolling the image reaches the decoder of five layers at step 5: before it every image gets
        // the same answer, right for exactly one class in six of the balanced validation split.
        Assert.All(sweep.ReadoutStep.Take(5), p => Assert.Equal(1.0 / 6, p.Accuracy.Top1, 10));
        // (b) unroll lengths from the minimal T (capped at the training T) to max_steps, the image on for 6 steps.
        var minimal = MinimalUnroll.Steps(ModelPresets.Load("rgc-shallow"));
        Assert.Equal(8, minimal);
        Assert.Equal(Enumerable.Range(8, 5), sweep.UnrollLength.Select(p => p.Steps));
        foreach (var p in sweep.UnrollLength) Assert.Equal(Direct(p.Steps, 6), p.Accuracy.Top1, 10);
        // (c) image durations 1 … T, read out at the training T.
        Assert.Equal(Enumerable.Range(1, 9), sweep.ImageDuration.Select(p => p.ImageSteps));
        foreach (var p in sweep.ImageDuration) Assert.Equal(Direct(9, p.ImageSteps), p.Accuracy.Top1, 10);
        // (d) every readout rule; "last" is the model's own readout at the training T.
        Assert.Equal(["last", "mean", "max_confidence", "threshold"], sweep.ReadoutRules.Select(r => r.Rule));
        Assert.Equal(Direct(9, 6), sweep.ReadoutRules[0].Accuracy.Top1, 10);
        Assert.Equal(8, sweep.ReadoutRules[0].MeanStep);
        // The baseline is evaluated once, as trained (feedforward: one step).
        var baseline = Assert.Single(sweep.Baselines);
        Assert.Equal(("basenet", 1), (baseline.Stage, baseline.Steps));
        // Six classes: top-5 is informative and reported.
        Assert.NotNull(sweep.ReadoutStep[0].Accuracy.Top5);

        var names = result.Artifacts.Select(a => a.Path[(a.Path.LastIndexOf('/') + 1)..]).Order().ToList();
        Assert.Equal(["image_duration.png", "image_duration.svg", "metrics.json", "readout_step.png", "readout_step.svg", "timestep_sweep.csv", "timestep_sweep.json",
            "unroll_length.png", "unroll_length.svg"], names);
        Assert.Equal(sweep.Peak.Top1, (double)result.Summary!["peak_top1"]!, 4);
        var svg = await ReadTextAsync(result, "readout_step.svg");
        Assert.Contains("image off", svg, StringComparison.Ordinal);
        Assert.Contains("chance", svg, StringComparison.Ordinal);
        var csv = (await ReadTextAsync(result, "timestep_sweep.csv")).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("analysis,x,series,top1,top1_sem,top5,images", csv[0]);
        Assert.Equal(9 + (sweep.UnrollLength.Count * 4) + 9 + 4 + 1, csv.Length - 1);
    }

    [Fact]
    public void A_feedforward_model_gives_one_point_per_analysis()
    {
        var (_, sweep) = f.Sweep("""{"threads": 1}""", "basenet", "shards");

        Assert.True(sweep.Feedforward);
        Assert.Equal(0, Assert.Single(sweep.ReadoutStep).Step);
        Assert.Equal(1, Assert.Single(sweep.UnrollLength).Steps);
        Assert.Equal(1, Assert.Single(sweep.ImageDuration).ImageSteps);
        Assert.All(sweep.ReadoutRules, r => Assert.Equal(sweep.ReadoutStep[0].Accuracy.Top1, r.Accuracy.Top1));
    }

    [Theory]
    [InlineData("""{"max_steps": 0}""", "max_steps")]
    [InlineData("""{"threshold": 1.5}""", "threshold")]
    [InlineData("""{"eval_max_samples": 0}""", "eval_max_samples")]
    [InlineData("""{"model": "rgc", "baselines": ["rgc"]}""", "baselines")]
    [InlineData("""{"baselines": ["a", "a"]}""", "baselines")]
    [InlineData("""{"threads": 0}""", "threads")]
    public void Invalid_params_name_the_field(string json, string field)
    {
        var errors = JsonSerializer.Deserialize<TimestepSweepParams>(json, PipelineJson.Options)!.Validate().ToList();
        Assert.Contains(errors, e => e.Field == field);
    }

    [Fact]
    public void Dependencies_that_do_not_fit_fail_with_the_param_or_dependency_to_fix()
    {
        var several = Assert.Throws<StageInputException>(() => f.Sweep("""{"threads": 1}""", "rgc", "basenet", "shards"));
        Assert.Contains("params.model", several.Message, StringComparison.Ordinal);
        var unknown = Assert.Throws<StageInputException>(() => f.Sweep("""{"baselines": ["resnet"], "threads": 1}""", "rgc", "shards"));
        Assert.Contains("params.baselines: 'resnet' is not a dependency", unknown.Message, StringComparison.Ordinal);
        var noShards = Assert.Throws<StageInputException>(() => f.Sweep("""{"threads": 1}""", "rgc"));
        Assert.Contains("validation shards", noShards.Message, StringComparison.Ordinal);
    }

    private async Task<(Tensor Images, Tensor Labels)> ValidationAsync()
    {
        var reader = new ShardReader(f.Harness.Store, f.Manifest, f.Harness.NewFolder("val-" + Guid.NewGuid().ToString("N")));
        var options = new BatchLoaderOptions
        {
            Split = ShardSplitName.Val,
            BatchSize = SweepFixture.Val,
            ImageSize = 32,
            Channels = 3,
            Normalization = ImageNormalization.Default(3),
            Seed = 0,
        };
        await using var loader = new BatchLoader(reader, options);
        var batch = (await loader.NextAsync(CancellationToken.None))!;
        return (tensor(batch.Images, [batch.Count, 3, 32, 32]), tensor(batch.Labels));
    }

    private async Task DownloadAsync(string stage, string path)
    {
        foreach (var (name, local) in new[] { ("model.safetensors", path), ("model.safetensors.json", ModelCheckpoint.SidecarPath(path)) })
        {
            await using var source = await f.Harness.Store.OpenReadAsync(f.Inputs[stage].Single(a => a.Path.EndsWith("/" + name, StringComparison.Ordinal)).Path);
            await using var file = File.Create(local);
            await source.CopyToAsync(file);
        }
    }

    private async Task<string> ReadTextAsync(StageResult result, string name)
    {
        await using var s = await f.Harness.Store.OpenReadAsync(result.Artifacts.Single(a => a.Path.EndsWith("/" + name, StringComparison.Ordinal)).Path);
        return await new StreamReader(s).ReadToEndAsync();
    }
}
