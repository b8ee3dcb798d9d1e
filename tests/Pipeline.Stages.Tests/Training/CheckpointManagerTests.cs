using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Pipeline.Stages.Artifacts;
using Pipeline.Stages.Execution;
using Pipeline.Stages.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pipeline.Stages.Tests.Training;

public sealed class CheckpointManagerTests : IDisposable
{
    private const string Folder = "runs/1/train-abcdef12/checkpoints/";
    private static readonly JsonNode Spec = JsonNode.Parse("""{"model": "tiny", "classes": 3}""")!;

    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"ckpt-manager-tests-{Guid.NewGuid():N}");
    private readonly FileSystemArtifactStore _store;
    private readonly RecordingLogger _log = new();

    public CheckpointManagerTests()
    {
        torch.set_num_threads(1);
        _store = new FileSystemArtifactStore(Path.Combine(_dir, "store"));
    }

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private CheckpointManager Manager(int keep = 3, IArtifactStore? store = null) =>
        new(store ?? _store, Folder, Path.Combine(_dir, "scratch"), keep, _log);

    /// <summary>Conv, batch norm (buffers), dropout (consumes the torch RNG) and a linear read-out.</summary>
    private static Sequential Tiny(int seed)
    {
        torch.manual_seed(seed);
        return nn.Sequential(
            ("conv", nn.Conv2d(1, 4, 3)),
            ("bn", nn.BatchNorm2d(4)),
            ("relu", nn.ReLU()),
            ("drop", nn.Dropout(0.3)),
            ("flat", nn.Flatten()),
            ("fc", nn.Linear(4 * 6 * 6, 3)));
    }

    private static TrainingOptimizer Optimizer(string kind, nn.Module model) => kind switch
    {
        "sgd" => new(new OptimizerParams { LearningRate = 0.05, Momentum = 0.9, WeightDecay = 1e-4, Nesterov = true }, model.parameters()),
        "adamw" => new(new OptimizerParams { Kind = OptimizerKind.Adamw, LearningRate = 0.01, WeightDecay = 0.01 }, model.parameters()),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    /// <summary>Batches from the step number alone, so they do not depend on the torch RNG whose restore is under test.</summary>
    private static float TrainStep(Sequential model, TrainingOptimizer optimizer, long step)
    {
        using var scope = torch.NewDisposeScope();
        model.train();
        var x = ((torch.arange(8 * 64, dtype: ScalarType.Float32) + step * 13) * 0.37).sin().reshape(8, 1, 8, 8);
        var y = (torch.arange(8, dtype: ScalarType.Int64) + step) % 3;
        optimizer.ZeroGrad();
        var loss = nn.functional.cross_entropy(model.forward(x), y);
        loss.backward();
        optimizer.Step(0.05);
        return loss.ToSingle();
    }

    private static byte[] OptimizerBytes(TrainingOptimizer optimizer)
    {
        using var buffer = new MemoryStream();
        optimizer.SaveAsync(buffer, CancellationToken.None).GetAwaiter().GetResult();
        return buffer.ToArray();
    }

    private static Dictionary<string, Tensor> Snapshot(nn.Module model) =>
        model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());

    private static void AssertSameState(Dictionary<string, Tensor> expected, nn.Module model)
    {
        var actual = model.state_dict();
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (key, tensor) in expected) Assert.True(tensor.Equals(actual[key]), $"{key} differs");
    }

    private static JsonObject History(long step) => new() { ["history"] = new JsonArray(step, step * 2), ["note"] = "tiny" };

    [Fact]
    public async Task Save_then_load_into_fresh_objects_gives_identical_parameters_optimizer_state_and_trainer_state()
    {
        using var model = Tiny(seed: 1);
        using var optimizer = Optimizer("sgd", model);
        for (var s = 0; s < 3; s++) TrainStep(model, optimizer, s);
        var saved = await Manager().SaveAsync(model, optimizer, Spec, new TrainingPosition(3, 1, 2), History(3), CancellationToken.None);

        using var fresh = Tiny(seed: 2);
        using var freshOptimizer = Optimizer("sgd", fresh);
        var loaded = await Manager().LoadNewestAsync(fresh, freshOptimizer, CancellationToken.None);

        Assert.NotNull(loaded);
        Assert.Equal(new TrainingPosition(3, 1, 2), loaded.Position);
        Assert.Equal(saved.Folder, loaded.Folder);
        Assert.Equal(Folder + "step-0000000003/", loaded.Folder);
        Assert.True(JsonNode.DeepEquals(History(3), loaded.State));
        AssertSameState(Snapshot(model), fresh);
        Assert.Equal(OptimizerBytes(optimizer), OptimizerBytes(freshOptimizer));
        Assert.True(fresh.parameters().All(p => p.requires_grad));

        var marker = JsonNode.Parse(await File.ReadAllTextAsync(_store.FullPath(loaded.Folder + "checkpoint.json")))!;
        Assert.Equal(CheckpointManager.FormatVersion, marker["format_version"]!.GetValue<int>());
        Assert.Equal(2, marker["position"]!["batch_in_epoch"]!.GetValue<int>());
        Assert.Equal(new[] { "model.safetensors", "model.safetensors.json", "optimizer.safetensors", "rng.bin" },
            marker["files"]!.AsObject().Select(kv => kv.Key).Order(StringComparer.Ordinal));
        await using (var f = File.OpenRead(_store.FullPath(loaded.Folder + "optimizer.safetensors")))
            Assert.Equal(await Sha256Stream.HashAsync(f), marker["files"]!["optimizer.safetensors"]!["sha256"]!.GetValue<string>());
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(_dir, "scratch")));
    }

    [Theory]
    [InlineData("sgd")]
    [InlineData("adamw")]
    public Task Resuming_in_fresh_objects_continues_bit_identically(string kind) =>
        // One OS thread with one torch thread for both halves: after an await a pool thread may compute with another
        // count (its sums in another order), which differed in the last bit in a CI run.
        TorchSettings.RunOnOwnThreadAsync(1, async () =>
        {
            await ResumeAndCompareAsync(kind);
            return true;
        });

    private async Task ResumeAndCompareAsync(string kind)
    {
        // Uninterrupted: 3 steps, checkpoint, 3 more.
        using var model = Tiny(seed: 7);
        using var optimizer = Optimizer(kind, model);
        for (var s = 0; s < 3; s++) TrainStep(model, optimizer, s);
        await Manager().SaveAsync(model, optimizer, Spec, new TrainingPosition(3, 0, 3), new JsonObject(), CancellationToken.None);
        var losses = Enumerable.Range(3, 3).Select(s => TrainStep(model, optimizer, s)).ToArray();

        // Resumed: other seed (other weights, other RNG position), load, the same 3 steps.
        using var resumed = Tiny(seed: 99);
        using var resumedOptimizer = Optimizer(kind, resumed);
        torch.randn(1000).Dispose();
        var loaded = await Manager().LoadNewestAsync(resumed, resumedOptimizer, CancellationToken.None);
        Assert.Equal(3, loaded!.Position.Step);
        var resumedLosses = Enumerable.Range(3, 3).Select(s => TrainStep(resumed, resumedOptimizer, s)).ToArray();

        Assert.Equal(losses, resumedLosses);
        AssertSameState(Snapshot(model), resumed);
        Assert.Equal(OptimizerBytes(optimizer), OptimizerBytes(resumedOptimizer));
    }

    [Fact]
    public async Task The_torch_random_stream_continues_where_it_was_saved()
    {
        using var model = Tiny(seed: 3);
        using var optimizer = Optimizer("sgd", model);
        await Manager().SaveAsync(model, optimizer, Spec, new TrainingPosition(0, 0, 0), new JsonObject(), CancellationToken.None);
        using var expected = torch.rand(16);

        torch.manual_seed(12345);
        await Manager().LoadNewestAsync(model, optimizer, CancellationToken.None);
        using var actual = torch.rand(16);
        Assert.True(expected.Equals(actual));
    }

    [Fact]
    public async Task Keeps_the_newest_k_checkpoints_and_deletes_the_rest_from_the_store()
    {
        using var model = Tiny(seed: 1);
        using var optimizer = Optimizer("sgd", model);
        var manager = Manager(keep: 2);
        for (var step = 1; step <= 4; step++)
        {
            TrainStep(model, optimizer, step);
            await manager.SaveAsync(model, optimizer, Spec, new TrainingPosition(step, 0, step), new JsonObject(), CancellationToken.None);
        }

        Assert.Equal(new long[] { 3, 4 }, (await manager.ListAsync(CancellationToken.None)).Select(p => p.Step));
        var left = new List<string>();
        await foreach (var a in _store.ListAsync(Folder)) left.Add(a.Path);
        Assert.All(left, p => Assert.Matches("step-000000000[34]/", p));
        Assert.Equal(10, left.Count);
    }

    [Theory]
    [InlineData("model.safetensors")]
    [InlineData("optimizer.safetensors")]
    public async Task A_corrupt_newest_checkpoint_falls_back_to_the_previous_with_a_warning(string file)
    {
        using var model = Tiny(seed: 1);
        using var optimizer = Optimizer("adamw", model);
        for (var s = 0; s < 2; s++) TrainStep(model, optimizer, s);
        await Manager().SaveAsync(model, optimizer, Spec, new TrainingPosition(2, 0, 2), History(2), CancellationToken.None);
        var atTwo = Snapshot(model);
        var optimizerAtTwo = OptimizerBytes(optimizer);
        for (var s = 2; s < 4; s++) TrainStep(model, optimizer, s);
        await Manager().SaveAsync(model, optimizer, Spec, new TrainingPosition(4, 0, 4), History(4), CancellationToken.None);
        FlipByte(_store.FullPath(Folder + "step-0000000004/" + file));

        using var fresh = Tiny(seed: 5);
        using var freshOptimizer = Optimizer("adamw", fresh);
        var loaded = await Manager().LoadNewestAsync(fresh, freshOptimizer, CancellationToken.None);

        Assert.Equal(2, loaded!.Position.Step);
        Assert.True(JsonNode.DeepEquals(History(2), loaded.State));
        AssertSameState(atTwo, fresh);
        Assert.Equal(optimizerAtTwo, OptimizerBytes(freshOptimizer));
        var warning = Assert.Single(_log.Warnings);
        Assert.Contains("step-0000000004/", warning);
        Assert.Contains(file, warning);
    }

    [Fact]
    public async Task A_corrupt_only_checkpoint_returns_null_and_leaves_model_and_optimizer_untouched()
    {
        using var model = Tiny(seed: 1);
        using var optimizer = Optimizer("sgd", model);
        TrainStep(model, optimizer, 0);
        await Manager().SaveAsync(model, optimizer, Spec, new TrainingPosition(1, 0, 1), new JsonObject(), CancellationToken.None);
        var bytes = await File.ReadAllBytesAsync(_store.FullPath(Folder + "step-0000000001/model.safetensors"));
        await File.WriteAllBytesAsync(_store.FullPath(Folder + "step-0000000001/model.safetensors"), bytes[..^8]);

        using var fresh = Tiny(seed: 2);
        using var freshOptimizer = Optimizer("sgd", fresh);
        TrainStep(fresh, freshOptimizer, 5);
        var before = Snapshot(fresh);
        var optimizerBefore = OptimizerBytes(freshOptimizer);

        Assert.Null(await Manager().LoadNewestAsync(fresh, freshOptimizer, CancellationToken.None));
        AssertSameState(before, fresh);
        Assert.Equal(optimizerBefore, OptimizerBytes(freshOptimizer));
        Assert.Contains("step-0000000001/", Assert.Single(_log.Warnings));
    }

    [Fact]
    public async Task A_model_that_does_not_fit_rolls_the_already_loaded_optimizer_back()
    {
        // Same parameters (the optimizer state fits), but the target has batch-norm buffers the checkpoint lacks.
        torch.manual_seed(1);
        using var saved = nn.Sequential(("fc", nn.Linear(4, 3)));
        using var savedOptimizer = new TrainingOptimizer(new OptimizerParams { LearningRate = 0.1, Momentum = 0.9, Nesterov = false }, saved.parameters());
        using (var scope = torch.NewDisposeScope())
        {
            saved.forward(torch.ones(2, 4)).sum().backward();
            savedOptimizer.Step(0.1);
        }
        await Manager().SaveAsync(saved, savedOptimizer, Spec, new TrainingPosition(1, 0, 1), new JsonObject(), CancellationToken.None);

        using var target = nn.Sequential(("fc", nn.Linear(4, 3)), ("bn", nn.BatchNorm1d(3, affine: false)));
        using var targetOptimizer = new TrainingOptimizer(new OptimizerParams { LearningRate = 0.1, Momentum = 0.9, Nesterov = false }, target.parameters());
        var before = Snapshot(target);
        var optimizerBefore = OptimizerBytes(targetOptimizer);

        Assert.Null(await Manager().LoadNewestAsync(target, targetOptimizer, CancellationToken.None));
        AssertSameState(before, target);
        Assert.Equal(optimizerBefore, OptimizerBytes(targetOptimizer));
        Assert.Contains("bn.running_mean", Assert.Single(_log.Warnings));
    }

    [Fact]
    public async Task A_checkpoint_without_its_marker_is_incomplete_and_ignored()
    {
        using var model = Tiny(seed: 1);
        using var optimizer = Optimizer("sgd", model);
        await Manager().SaveAsync(model, optimizer, Spec, new TrainingPosition(2, 0, 2), new JsonObject(), CancellationToken.None);
        var atTwo = Snapshot(model);
        TrainStep(model, optimizer, 0);
        await Manager().SaveAsync(model, optimizer, Spec, new TrainingPosition(5, 0, 5), new JsonObject(), CancellationToken.None);
        await _store.DeleteAsync(Folder + "step-0000000005/checkpoint.json");

        Assert.Equal(new long[] { 2 }, (await Manager().ListAsync(CancellationToken.None)).Select(p => p.Step));
        using var fresh = Tiny(seed: 2);
        using var freshOptimizer = Optimizer("sgd", fresh);
        Assert.Equal(2, (await Manager().LoadNewestAsync(fresh, freshOptimizer, CancellationToken.None))!.Position.Step);
        AssertSameState(atTwo, fresh);
        Assert.Contains("incomplete", Assert.Single(_log.Warnings));
    }

    [Fact]
    public async Task An_unparsable_marker_falls_back_and_is_left_out_of_the_list()
    {
        using var model = Tiny(seed: 1);
        using var optimizer = Optimizer("sgd", model);
        await Manager().SaveAsync(model, optimizer, Spec, new TrainingPosition(2, 0, 2), new JsonObject(), CancellationToken.None);
        await Manager().SaveAsync(model, optimizer, Spec, new TrainingPosition(4, 0, 4), new JsonObject(), CancellationToken.None);
        // Committed through the store (its own sha256 matches), but not a whole checkpoint document.
        using (var junk = new MemoryStream(Encoding.UTF8.GetBytes("""{"format_version": 1, "position": {"step": 4}}""")))
            await _store.PutAsync(Folder + "step-0000000004/checkpoint.json", junk, "application/json");

        Assert.Equal(new long[] { 2 }, (await Manager().ListAsync(CancellationToken.None)).Select(p => p.Step));
        using var fresh = Tiny(seed: 2);
        using var freshOptimizer = Optimizer("sgd", fresh);
        Assert.Equal(2, (await Manager().LoadNewestAsync(fresh, freshOptimizer, CancellationToken.None))!.Position.Step);
        Assert.Equal(2, _log.Warnings.Count);
        Assert.All(_log.Warnings, w => Assert.Contains("step-0000000004/", w));
    }

    [Fact]
    public async Task No_checkpoint_gives_null()
    {
        using var model = Tiny(seed: 1);
        using var optimizer = Optimizer("sgd", model);
        Assert.Null(await Manager().LoadNewestAsync(model, optimizer, CancellationToken.None));
        Assert.Empty(await Manager().ListAsync(CancellationToken.None));
        Assert.Empty(_log.Warnings);
    }

    [Fact]
    public async Task List_is_oldest_first_with_epoch_and_batch()
    {
        using var model = Tiny(seed: 1);
        using var optimizer = Optimizer("sgd", model);
        var manager = Manager(keep: 5);
        foreach (var p in new[] { new TrainingPosition(9, 0, 9), new TrainingPosition(10, 1, 0), new TrainingPosition(120, 12, 0) })
            await manager.SaveAsync(model, optimizer, Spec, p, new JsonObject(), CancellationToken.None);

        Assert.Equal(
            new[] { new TrainingPosition(9, 0, 9), new TrainingPosition(10, 1, 0), new TrainingPosition(120, 12, 0) },
            await manager.ListAsync(CancellationToken.None));
    }

    [Fact]
    public async Task Saving_below_an_existing_step_deletes_the_abandoned_newer_checkpoints()
    {
        // After a fall-back from a corrupt step 6 to step 3, the next save is step 4; the stale step 6 must not count
        // towards keep (it would push the good checkpoints out) nor be tried again on the next restart.
        using var model = Tiny(seed: 1);
        using var optimizer = Optimizer("sgd", model);
        var manager = Manager(keep: 2);
        foreach (var step in new[] { 3, 6, 4 })
            await manager.SaveAsync(model, optimizer, Spec, new TrainingPosition(step, 0, step), new JsonObject(), CancellationToken.None);

        Assert.Equal(new long[] { 3, 4 }, (await manager.ListAsync(CancellationToken.None)).Select(p => p.Step));
        Assert.Contains("step-0000000006/", Assert.Single(_log.Warnings));
    }

    [Fact]
    public async Task A_second_save_at_the_same_step_replaces_the_first()
    {
        using var model = Tiny(seed: 1);
        using var optimizer = Optimizer("sgd", model);
        var manager = Manager();
        await manager.SaveAsync(model, optimizer, Spec, new TrainingPosition(4, 0, 4), History(1), CancellationToken.None);
        TrainStep(model, optimizer, 0);
        await manager.SaveAsync(model, optimizer, Spec, new TrainingPosition(4, 1, 0), History(2), CancellationToken.None);

        using var fresh = Tiny(seed: 2);
        using var freshOptimizer = Optimizer("sgd", fresh);
        var loaded = await manager.LoadNewestAsync(fresh, freshOptimizer, CancellationToken.None);
        Assert.Equal(new TrainingPosition(4, 1, 0), loaded!.Position);
        Assert.True(JsonNode.DeepEquals(History(2), loaded.State));
        AssertSameState(Snapshot(model), fresh);
    }

    [Fact]
    public async Task A_failed_save_leaves_no_marker_and_the_next_save_removes_its_leftovers()
    {
        using var model = Tiny(seed: 1);
        using var optimizer = Optimizer("sgd", model);
        var failing = new FailingStore(_store, failOn: "step-0000000002/optimizer.safetensors");
        await Manager(store: failing).SaveAsync(model, optimizer, Spec, new TrainingPosition(1, 0, 1), new JsonObject(), CancellationToken.None);
        await Assert.ThrowsAsync<IOException>(() =>
            Manager(store: failing).SaveAsync(model, optimizer, Spec, new TrainingPosition(2, 0, 2), new JsonObject(), CancellationToken.None));

        Assert.Null(await _store.GetInfoAsync(Folder + "step-0000000002/checkpoint.json"));
        Assert.NotNull(await _store.GetInfoAsync(Folder + "step-0000000002/model.safetensors"));
        Assert.Equal(new long[] { 1 }, (await Manager().ListAsync(CancellationToken.None)).Select(p => p.Step));

        await Manager().SaveAsync(model, optimizer, Spec, new TrainingPosition(3, 0, 3), new JsonObject(), CancellationToken.None);
        Assert.Null(await _store.GetInfoAsync(Folder + "step-0000000002/model.safetensors"));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    public void Keep_must_be_positive(int keep) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => Manager(keep: keep));

    [Fact]
    public void The_folder_must_end_with_a_slash() =>
        Assert.Throws<ArgumentException>(() => new CheckpointManager(_store, "runs/1/checkpoints", _dir, 1, _log));

    private static void FlipByte(string path)
    {
        var bytes = File.ReadAllBytes(path);
        bytes[bytes.Length / 2] ^= 0x5A;
        File.WriteAllBytes(path, bytes);
    }

    /// <summary>Collects formatted log lines by level.</summary>
    private sealed class RecordingLogger : ILogger
    {
        private readonly List<(LogLevel Level, string Message)> _entries = [];

        public IReadOnlyList<string> Warnings => _entries.Where(e => e.Level == LogLevel.Warning).Select(e => e.Message).ToList();

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            _entries.Add((logLevel, formatter(state, exception)));
    }

    /// <summary>The file-system store, except that one put fails part-way (a full disk, a dropped connection).</summary>
    private sealed class FailingStore(IArtifactStore inner, string failOn) : IArtifactStore
    {
        public string Kind => inner.Kind;

        public Task<ArtifactInfo> PutAsync(string path, Stream content, string mediaType, CancellationToken ct = default) =>
            path.EndsWith(failOn, StringComparison.Ordinal)
                ? throw new IOException($"Simulated failure writing '{path}'.")
                : inner.PutAsync(path, content, mediaType, ct);

        public Task<Stream> OpenReadAsync(string path, string? expectedSha256 = null, CancellationToken ct = default) => inner.OpenReadAsync(path, expectedSha256, ct);
        public Task<ArtifactInfo?> GetInfoAsync(string path, CancellationToken ct = default) => inner.GetInfoAsync(path, ct);
        public IAsyncEnumerable<ArtifactInfo> ListAsync(string prefix, CancellationToken ct = default) => inner.ListAsync(prefix, ct);
        public Task<bool> DeleteAsync(string path, CancellationToken ct = default) => inner.DeleteAsync(path, ct);
        public Uri? GetDownloadUri(string path, TimeSpan lifetime) => null;
    }
}
