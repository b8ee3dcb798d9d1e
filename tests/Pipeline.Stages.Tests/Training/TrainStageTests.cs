using System.Text.Json;
using System.Text.Json.Nodes;
using Pipeline.Stages.Artifacts;
using Pipeline.Stages.Data;
using Pipeline.Stages.Execution;
using Pipeline.Stages.Models;
using Pipeline.Stages.Models.Checkpoints;
using Pipeline.Stages.Tests.Data;
using Pipeline.Stages.Training;

namespace Pipeline.Stages.Tests.Training;

public sealed class TrainStageTests : IDisposable
{
    // Narrow BaseNet (16–128 channels: wide enough to stay clear of the small-channel oneDNN gradient fault).
    private const string Basenet = """{"preset": "basenet", "width": 0.25}""";
    private const string Rgc = """{"preset": "rgc-shallow", "width": 0.25, "time": {"steps": 4, "image_off": null}}""";

    private readonly StageTestHarness _h = new();

    public void Dispose() => _h.Dispose();

    internal static TrainParams Parse(string json) =>
        JsonSerializer.Deserialize<TrainParams>(json, PipelineJson.Options) ?? throw new InvalidOperationException("null params");

    private async Task<IReadOnlyDictionary<string, IReadOnlyList<ArtifactInfo>>> ShardsAsync(int train = 256, int val = 64)
    {
        var context = _h.NewContext();
        var p = ShardStageTests.Parse($$"""{"source": {"num_classes": 4, "image_size": 32, "train_count": {{train}}, "val_count": {{val}}, "occlusion": 0.1, "clutter": 0}, "shard_max_samples": 64}""");
        var result = await StageTestHarness.RunAsync(new ShardHandler(), new ShardStage(p, context), CancellationToken.None);
        return new Dictionary<string, IReadOnlyList<ArtifactInfo>> { ["shards"] = result.Artifacts };
    }

    private static string Params(string model, string extra, int batch = 16) =>
        $$"""{"model": {{model}}, "batch_size": {{batch}}, "optimizer": {"kind": "adam", "learning_rate": 0.003, "weight_decay": 0}, "threads": 1, "seed": 3, "metrics_interval_seconds": 0{{extra}}}""";

    private async Task<(StageResult Result, StageContext Context)> TrainAsync(IReadOnlyDictionary<string, IReadOnlyList<ArtifactInfo>> inputs, string json,
        string? folder = null, RecordingProgress? progress = null, CancellationToken ct = default)
    {
        var context = _h.NewContext(progress, inputs, folder, "train");
        var result = await StageTestHarness.RunAsync(new TrainHandler(), new TrainStage(Parse(json), context), ct);
        return (result, context);
    }

    private async Task<JsonNode> ReadJsonAsync(StageResult result, string name)
    {
        await using var s = await _h.Store.OpenReadAsync(result.Artifacts.Single(a => a.Path.EndsWith("/" + name, StringComparison.Ordinal)).Path);
        return (await JsonNode.ParseAsync(s))!;
    }

    private async Task<TrainingHistory> HistoryAsync(StageResult result) =>
        (await ReadJsonAsync(result, "history.json")).Deserialize<TrainingHistory>(PipelineJson.Options)!;

    [Fact]
    public async Task A_short_run_lowers_the_loss_and_leaves_model_metrics_and_curves()
    {
        var inputs = await ShardsAsync();

        // Eight passes over 256 images: the training loss falls well before the (hard) task generalises.
        var (result, context) = await TrainAsync(inputs, Params(Basenet, """, "epochs": 8""", batch: 32));

        var names = result.Artifacts.Select(a => a.Path[context.OutputFolder.Length..]).Order().ToList();
        Assert.Equal(["curves.png", "curves.svg", "history.json", "metrics.json", "model.safetensors", "model.safetensors.json"], names);
        Assert.Empty(await _h.Store.ListAsync(context.StateFolder).ToListAsync()); // keep_final 0: no checkpoint outlives the model
        var history = await HistoryAsync(result);
        Assert.Equal(8 * 8, history.Train[^1].Step);
        Assert.True(history.Train.TakeLast(8).Average(t => t.Loss) < 0.8 * history.Train.Take(4).Average(t => t.Loss),
            $"loss did not fall: {string.Join(", ", history.Train.Select(t => t.Loss.ToString("F3", System.Globalization.CultureInfo.InvariantCulture)))}");
        Assert.Equal(8, history.Eval.Count);

        var metrics = await ReadJsonAsync(result, "metrics.json");
        Assert.Equal(64, (long)metrics["steps"]!);
        Assert.Equal((double)metrics["top1"]!, history.Eval[^1].Top1);
        Assert.False(metrics.AsObject().ContainsKey("top5")); // four classes: top-5 is 100 % by construction, not reported
        Assert.True((long)metrics["parameters"]! > 0 && (long)metrics["multiply_adds"]! > 0);
        Assert.InRange((double)metrics["input_wait_fraction"]!, 0, 1);

        // The trained model reloads from its output with the spec its sidecar records.
        var modelPath = result.Artifacts.Single(a => a.Path.EndsWith("/model.safetensors", StringComparison.Ordinal)).Path;
        var spec = (await ReadJsonAsync(result, "model.safetensors.json"))["spec"].Deserialize<ModelSpec>(PipelineJson.Options)!;
        using var model = ModelFactory.Create(spec);
        await ModelCheckpoint.LoadAsync(_h.Store, modelPath, model.Module);
        Assert.Equal(4, spec.Classes);
        Assert.Equal(32, spec.InputSize);
    }

    [Fact]
    public async Task A_run_stopped_midway_resumes_from_its_checkpoint_and_follows_the_uninterrupted_trajectory()
    {
        var inputs = await ShardsAsync(train: 128);
        var json = Params(Rgc, """, "steps": 12, "checkpoint": {"every_steps": 4}""");
        var (whole, _) = await TrainAsync(inputs, json);
        var expected = await HistoryAsync(whole);

        // Stop the second run after its 6th step, as a cancellation or SIGTERM would: it checkpoints before it ends.
        using var stop = new CancellationTokenSource();
        var progress = new RecordingProgress { OnReport = (f, _) => { if (f >= 6 / 12.0) stop.Cancel(); } };
        var folder = "runs/1/train-resumed/";
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => TrainAsync(inputs, json, folder, progress, stop.Token));

        var (resumed, _) = await TrainAsync(inputs, json, folder);

        var metrics = await ReadJsonAsync(resumed, "metrics.json");
        Assert.Equal(6, (long)metrics["resumed_from_step"]!);
        Assert.Equal(6, (long)metrics["steps_this_attempt"]!);
        Assert.Equal(12, (long)metrics["steps"]!);
        var got = await HistoryAsync(resumed);
        Assert.Equal(expected.Train.Select(t => t.Step), got.Train.Select(t => t.Step));
        foreach (var (e, g) in expected.Train.Zip(got.Train)) Assert.Equal(e.Loss, g.Loss, 1e-4);
        Assert.Equal(expected.Eval[^1].Loss, got.Eval[^1].Loss, 1e-4);
    }

    [Fact]
    public async Task A_corrupt_newest_checkpoint_falls_back_to_the_previous_one()
    {
        var inputs = await ShardsAsync(train: 128);
        var folder = "runs/1/train-corrupt/";
        await TrainAsync(inputs, Params(Basenet, """, "steps": 6, "checkpoint": {"every_steps": 2, "keep": 3, "keep_final": 3}"""), folder);
        var newest = Path.Combine(_h.Store.Root, "state", folder, "checkpoints", "step-0000000006", "model.safetensors");
        var bytes = await File.ReadAllBytesAsync(newest);
        bytes[^1] ^= 0xFF;
        await File.WriteAllBytesAsync(newest, bytes);

        var (result, _) = await TrainAsync(inputs, Params(Basenet, """, "steps": 8, "checkpoint": {"every_steps": 2, "keep": 3}"""), folder);

        var metrics = await ReadJsonAsync(result, "metrics.json");
        Assert.Equal(4, (long)metrics["resumed_from_step"]!);
        Assert.Equal(8, (await HistoryAsync(result)).Train[^1].Step);
    }

    [Fact]
    public async Task A_loss_that_turns_nan_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint()
    {
        var inputs = await ShardsAsync(train: 128);
        var folder = "runs/1/train-nan/";
        await TrainAsync(inputs, Params(Basenet, """, "steps": 4, "checkpoint": {"every_steps": 2, "keep_final": 1}"""), folder);

        // Normalising with an absurd mean makes every input -inf: the loss is NaN from the first step on.
        var poisoned = Params(Basenet, """, "steps": 10, "max_nan_steps": 3, "mean": [1e30, 1e30, 1e30], "std": [1e-30, 1e-30, 1e-30], "checkpoint": {"every_steps": 2}""");
        var e = await Assert.ThrowsAsync<StageInputException>(() => TrainAsync(inputs, poisoned, folder));

        Assert.Contains("NaN for 3 consecutive steps", e.Message, StringComparison.Ordinal);
        Assert.True(e.Message.Contains("last good checkpoint (step 4) is kept", StringComparison.Ordinal), e.Message);
        Assert.Contains("last good checkpoint (step 4) is kept", e.Message, StringComparison.Ordinal);
        var manager = new CheckpointManager(_h.Store, $"state/{folder}{TrainHandler.CheckpointFolder}", _h.NewFolder("scratch-nan"), 3, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        Assert.Equal(4, (await manager.ListAsync(CancellationToken.None))[^1].Step);
    }

    /// <summary>A search's port that records what the trial reports and stops it at <paramref name="stopAt"/>.</summary>
    private sealed class StopAt(long stopAt, params long[] rungs) : ITrialPruning
    {
        public List<(long Step, double Value)> Reports { get; } = [];
        public IReadOnlyList<long> Rungs => rungs;
        public string Metric => "top1";

        public Task<bool> ShouldContinueAsync(long step, double value, CancellationToken ct)
        {
            Reports.Add((step, value));
            return Task.FromResult(step != stopAt);
        }
    }

    [Fact]
    public async Task A_trial_judged_at_its_rungs_reports_validation_top1_and_when_pruned_stops_with_its_checkpoint()
    {
        var inputs = await ShardsAsync(train: 128);
        var folder = "runs/1/train-pruned/";
        var port = new StopAt(4, 2, 4);
        var context = _h.NewContext(null, inputs, folder, "train", pruning: port);

        var e = await Assert.ThrowsAsync<TrialPrunedException>(async () =>
            await StageTestHarness.RunAsync(new TrainHandler(), new TrainStage(Parse(Params(Basenet, """, "steps": 8""")), context)));

        Assert.Equal([2L, 4L], port.Reports.Select(r => r.Step));
        Assert.All(port.Reports, r => Assert.InRange(r.Value, 0, 1));
        Assert.Equal((4L, port.Reports[1].Value), (e.Step, e.Value));
        Assert.True(e.Summary["parameters"]!.GetValue<long>() > 0);
        // The pruned trial's work is kept: the same stage without pruning resumes at step 4.
        var (result, _) = await TrainAsync(inputs, Params(Basenet, """, "steps": 8"""), folder);
        Assert.Equal(4, (long)(await ReadJsonAsync(result, "metrics.json"))["resumed_from_step"]!);
    }

    [Fact]
    public async Task Train_metrics_reach_the_run_store_at_a_bounded_rate()
    {
        var inputs = await ShardsAsync(train: 128);
        var everyStep = new RecordingProgress();
        var bounded = new RecordingProgress();

        await TrainAsync(inputs, Params(Basenet, """, "steps": 16"""), progress: everyStep);
        await TrainAsync(inputs, Params(Basenet, """, "steps": 16""").Replace("\"metrics_interval_seconds\": 0", "\"metrics_interval_seconds\": 3600", StringComparison.Ordinal), progress: bounded);

        Assert.Equal(16, everyStep.Metrics.Count(m => m.Name == "train_loss"));
        Assert.Equal(1, bounded.Metrics.Count(m => m.Name == "train_loss")); // only the final flush
        Assert.Equal(16, bounded.Reports.Count(r => r.Message?.StartsWith("epoch", StringComparison.Ordinal) == true)); // progress still every step
    }

    [Fact]
    public async Task A_class_count_that_differs_from_the_shards_is_a_clear_error()
    {
        var inputs = await ShardsAsync(train: 64);

        var e = await Assert.ThrowsAsync<StageInputException>(() => TrainAsync(inputs, Params("""{"preset": "basenet", "width": 0.25, "classes": 7}""", """, "steps": 1""")));

        Assert.Contains("model.classes is 7 but the shards have 4 classes", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_missing_shard_is_a_clear_error_that_names_it()
    {
        var inputs = await ShardsAsync(train: 128);
        var shard = inputs["shards"].First(a => a.Path.Contains("train-", StringComparison.Ordinal) && a.Path.EndsWith(".tar", StringComparison.Ordinal));
        await _h.Store.DeleteAsync(shard.Path);

        var e = await Assert.ThrowsAsync<StageInputException>(() => TrainAsync(inputs, Params(Basenet, """, "steps": 20""")));

        Assert.Contains(shard.Path, e.Message, StringComparison.Ordinal);
        Assert.Contains("Re-run the shard stage", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"batch_size": 0}""", "batch_size")]
    [InlineData("""{"epochs": 2, "steps": 10}""", "steps")]
    [InlineData("""{"optimizer": {"learning_rate": -1}}""", "optimizer.learning_rate")]
    [InlineData("""{"optimizer": {"momentum": 0}}""", "optimizer.nesterov")]
    [InlineData("""{"model": {"preset": "nope"}}""", "model.preset")]
    [InlineData("""{"mean": [0.5]}""", "std")]
    [InlineData("""{"clip": {"norm": 0}}""", "clip.norm")]
    [InlineData("""{"checkpoint": {"keep": 0}}""", "checkpoint.keep")]
    [InlineData("""{"augmentation": {"kind": "natural", "min_scale": 0}}""", "augmentation.min_scale")]
    public void Invalid_params_name_the_field(string json, string field)
    {
        var errors = Parse(json).Validate().ToList();

        Assert.Contains(errors, e => e.Field == field);
    }

    [Fact]
    public void Defaults_follow_the_searched_configuration()
    {
        var p = Parse("{}");

        Assert.Empty(p.Validate());
        Assert.Equal((OptimizerKind.Sgd, 0.0076, 0.9, true), (p.Optimizer.Kind, p.Optimizer.LearningRate, p.Optimizer.Momentum, p.Optimizer.Nesterov));
        Assert.Equal(0.32, p.Clip.Value);
        Assert.Equal(64, p.BatchSize);
    }

    [Fact]
    public void The_learning_rate_warms_up_then_follows_its_schedule()
    {
        var cosine = new ScheduleParams { Kind = ScheduleKind.Cosine, WarmupSteps = 10 };
        var step = new ScheduleParams { Kind = ScheduleKind.Step, StepEpochs = 2, Gamma = 0.1 };

        Assert.Equal(0.01, cosine.LearningRateAt(0, 110, 10, 0.1), 1e-12);
        Assert.Equal(0.1, cosine.LearningRateAt(10, 110, 10, 0.1), 1e-12);
        Assert.Equal(0.05, cosine.LearningRateAt(60, 110, 10, 0.1), 1e-12);
        Assert.Equal(0.1, step.LearningRateAt(19, 100, 10, 0.1), 1e-12);
        Assert.Equal(0.01, step.LearningRateAt(20, 100, 10, 0.1), 1e-12);
    }

    [Fact]
    public void Out_of_memory_becomes_an_error_that_suggests_a_smaller_batch()
    {
        // A real allocation failure from libtorch's CPU allocator: one petabyte.
        var e = Assert.ThrowsAny<Exception>(() => TorchSharp.torch.empty(1L << 50, dtype: TorchSharp.torch.uint8));

        Assert.True(TrainHandler.IsOutOfMemory(e), e.Message);
        var message = TrainHandler.OutOfMemory(e, 64).Message;
        Assert.Contains("Out of memory while training with batch_size 64", message, StringComparison.Ordinal);
        Assert.Contains("Lower batch_size (e.g. 32)", message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', message);
    }
}
