using Microsoft.Extensions.DependencyInjection;
using Pipeline.Jobs.Engine;
using Pipeline.Jobs.RunStore;
using Pipeline.Stages.Artifacts;
using Pipeline.Jobs.Runs;

namespace Pipeline.Jobs.Tests.Engine;

/// <summary>
/// What spot GPUs and shared servers do to a run: workers stopped mid-computation, frozen past the heartbeat timeout
/// and woken again, killed and replaced by a new run of the same command, and artifacts damaged in the store.
/// </summary>
public class FaultToleranceTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(180);

    private static StageDetail Stage(RunDetail run, string name) => run.Stages.Single(s => s.Name == name);

    [Fact]
    public async Task A_worker_stopped_while_training_hands_the_stage_back_after_its_grace_period_and_never_fails_it()
    {
        await using var env = await PipelineTestEnvironment.CreateAsync();
        var client = await env.StartHostAsync(worker: false);
        // No grace at all: whatever native call the step is in when SIGTERM arrives, the stage is handed back unfinished.
        var a = env.StartWorker("worker-a", settings: new Dictionary<string, string?> { ["Pipeline:ShutdownGracePeriod"] = "00:00:00" });

        var runId = await PipelineTestEnvironment.LaunchAsync(client, Specs.Train(steps: 60, every: 5, train: 2048));
        await PipelineTestEnvironment.WaitUntilAsync(client, runId, r => Stage(r, "train") is { Status: StageStatus.Running, Progress: >= 0.2 }, Timeout, "train a fifth");
        a.Terminate();

        var handedBack = await PipelineTestEnvironment.WaitUntilAsync(client, runId, r => Stage(r, "train").Status != StageStatus.Running, TimeSpan.FromSeconds(20), "hand back");
        Assert.True(Stage(handedBack, "train").Status == StageStatus.Queued, PipelineTestEnvironment.Describe(handedBack) + env.WorkerLogs);
        Assert.Contains(Stage(handedBack, "train").History, h => h.Reason == "worker worker-a shut down; the stage did not return within the shutdown grace period");
        env.StartWorker("worker-b");
        var run = await PipelineTestEnvironment.WaitForRunAsync(client, runId, Timeout);

        Assert.True(run.Status == RunStatus.Succeeded, PipelineTestEnvironment.Describe(run) + env.WorkerLogs);
        var train = Stage(run, "train");
        Assert.Equal(1, train.Attempt); // handed back, not failed or lost
        Assert.DoesNotContain(train.History, h => h.To == StageStatus.Failed);
        Assert.True((long)train.Summary!["resumed_from_step"]! >= 10, $"resumed from {train.Summary["resumed_from_step"]}");
        Assert.Equal(60, (long)train.Summary["steps"]!);
    }

    [Fact]
    public async Task A_worker_stopped_during_a_neural_fit_hands_it_back_instead_of_failing_it()
    {
        await using var env = await PipelineTestEnvironment.CreateAsync();
        var client = await env.StartHostAsync(worker: false);
        var grace = new Dictionary<string, string?> { ["Pipeline:ShutdownGracePeriod"] = "00:00:02" };
        var a = env.StartWorker("worker-a", settings: grace);
        var spec = Specs.Train(steps: 8, every: 100, extraStages: """
            ,
            "monkey": { "kind": "virtual-monkey", "depends_on": ["train"], "params": { "areas": [{ "region": "V4", "layer": "conv3", "latency_steps": 0, "sites": 16 }, { "region": "IT", "layer": "conv5", "latency_steps": 0, "sites": 16 }], "stimuli": 200, "repetitions": 4, "threads": 1 } },
            "fit": { "kind": "neural-fit", "depends_on": ["train", "monkey"], "params": { "features": { "max_dims": 256 }, "methods": ["pls", "ridge"], "threads": 1 } }
            """);

        var runId = await PipelineTestEnvironment.LaunchAsync(client, spec);
        await PipelineTestEnvironment.WaitUntilAsync(client, runId, r => Stage(r, "fit") is { Status: StageStatus.Running, Progress: >= 0.3 }, Timeout, "fit a third");
        a.Terminate();
        var handedBack = await PipelineTestEnvironment.WaitUntilAsync(client, runId, r => Stage(r, "fit").Status != StageStatus.Running, TimeSpan.FromSeconds(20), "hand back");
        Assert.True(Stage(handedBack, "fit").Status == StageStatus.Queued, PipelineTestEnvironment.Describe(handedBack) + env.WorkerLogs);

        env.StartWorker("worker-b", settings: grace);
        var run = await PipelineTestEnvironment.WaitForRunAsync(client, runId, Timeout);

        Assert.True(run.Status == RunStatus.Succeeded, PipelineTestEnvironment.Describe(run) + env.WorkerLogs);
        var fit = Stage(run, "fit");
        Assert.Equal(1, fit.Attempt);
        Assert.DoesNotContain(fit.History, h => h.To == StageStatus.Failed);
        Assert.StartsWith("worker worker-a shut down", fit.History.Single(h => h.To == StageStatus.Queued && h.From == StageStatus.Running).Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_attempt_frozen_past_the_heartbeat_timeout_and_woken_after_its_successor_finished_writes_and_deletes_nothing()
    {
        await using var env = await PipelineTestEnvironment.CreateAsync(azureBlobs: true);
        var client = await env.StartHostAsync(worker: false);
        var a = env.StartWorker("worker-a");
        var runId = await PipelineTestEnvironment.LaunchAsync(client, Specs.Probe(("long", "{ \"seconds\": 6, \"payload_bytes\": 65536 }", [])));
        await PipelineTestEnvironment.WaitUntilAsync(client, runId, r => r.Stages[0] is { Status: StageStatus.Running, Progress: > 0.1 }, Timeout, "get going on worker-a");
        a.Pause();
        env.StartWorker("worker-b");

        var done = await PipelineTestEnvironment.WaitForRunAsync(client, runId, Timeout);
        a.Resume();
        // worker-a's probe wakes with its time up: it tries to write its outputs, then learns from its heartbeat that it lost the stage.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (!env.WorkerLogs.Contains("was taken over by a newer attempt", StringComparison.Ordinal) && clock.Elapsed < TimeSpan.FromSeconds(30)) await Task.Delay(200);

        Assert.True(done.Status == RunStatus.Succeeded, PipelineTestEnvironment.Describe(done) + env.WorkerLogs);
        Assert.Contains("was taken over by a newer attempt", env.WorkerLogs, StringComparison.Ordinal);
        var run = await client.Services.GetRequiredService<RunQueries>().GetAsync(runId);
        var stage = run!.Stages[0];
        Assert.Equal(2, stage.Attempt);
        Assert.Equal(done.Stages[0].History.Count, stage.History.Count); // the stale attempt recorded no transition
        var store = client.Services.GetRequiredService<IArtifactStore>();
        Assert.Equal(2, stage.Artifacts.Count);
        foreach (var artifact in stage.Artifacts)
        {
            // Still there, byte for byte: the woken attempt neither overwrote nor cleaned up its successor's outputs.
            await using var read = await store.OpenReadAsync(artifact.Path, artifact.Sha256);
            await read.CopyToAsync(Stream.Null);
        }
    }

    [Fact]
    public async Task A_new_run_of_a_crashed_training_resumes_from_the_old_runs_checkpoint_which_shows_as_interrupted()
    {
        await using var env = await PipelineTestEnvironment.CreateAsync();
        var client = await env.StartHostAsync(worker: false);
        var a = env.StartWorker("worker-a");
        var spec = Specs.Train(steps: 40, every: 4, train: 2048);
        var crashedId = await PipelineTestEnvironment.LaunchAsync(client, spec);
        await PipelineTestEnvironment.WaitUntilAsync(client, crashedId, r => Stage(r, "train") is { Status: StageStatus.Running, Progress: >= 0.3 }, Timeout, "train a third");
        a.Kill();

        var interrupted = await PipelineTestEnvironment.WaitUntilAsync(client, crashedId, r => r.Status == RunStatus.Interrupted, TimeSpan.FromSeconds(20), "show as interrupted");
        Assert.False(interrupted.IsFinished);
        // Given up on: only the new run can continue the training, and it has nothing but the old run's checkpoints.
        var engine = client.Services.GetRequiredService<StageEngine>();
        await engine.CancelRunAsync(crashedId);
        var resumedId = await PipelineTestEnvironment.LaunchAsync(client, spec);
        env.StartWorker("worker-b");
        var resumed = await PipelineTestEnvironment.WaitForRunAsync(client, resumedId, Timeout);

        Assert.True(resumed.Status == RunStatus.Succeeded, PipelineTestEnvironment.Describe(resumed) + env.WorkerLogs);
        Assert.Equal(StageStatus.Cached, Stage(resumed, "shards").Status);
        var train = Stage(resumed, "train");
        Assert.Equal(StageStatus.Succeeded, train.Status);
        // Killed at step 12 or later: the checkpoint of step 12 may still have been being written (a kill leaves it
        // incomplete, and an incomplete checkpoint is skipped), so the newest intact one is at step 8 or later.
        Assert.True((long)train.Summary!["resumed_from_step"]! >= 8, $"resumed from {train.Summary["resumed_from_step"]}");
        Assert.Equal(40, (long)train.Summary["steps"]!);
        // keep_final 0: the finished stage leaves no checkpoint behind.
        var store = client.Services.GetRequiredService<IArtifactStore>();
        Assert.Empty(await store.ListAsync(ArtifactPaths.StateFolder("train", train.ContentKey!)).ToListAsync());

        // The crashed run, cancelled by worker-b's reconciler, continues on retry: its training comes from the cache.
        await PipelineTestEnvironment.WaitForRunAsync(client, crashedId, Timeout);
        await engine.RetryRunAsync(crashedId);
        var crashed = await PipelineTestEnvironment.WaitForRunAsync(client, crashedId, Timeout);
        Assert.True(crashed.Status == RunStatus.Succeeded, PipelineTestEnvironment.Describe(crashed));
        Assert.Equal(StageStatus.Cached, Stage(crashed, "train").Status);
    }

    [Fact]
    public async Task A_stage_that_fails_because_the_blob_store_went_away_says_so_and_is_retried_by_itself()
    {
        await using var env = await PipelineTestEnvironment.CreateAsync(azureBlobs: true);
        var azurite = new Uri(System.Text.RegularExpressions.Regex.Match(env.Blobs!, "BlobEndpoint=([^;]+)").Groups[1].Value);
        using var proxy = new TcpForwarder(azurite.Host, azurite.Port);
        proxy.Start();
        var blobs = env.Blobs!.Replace($":{azurite.Port}/", $":{proxy.Port}/", StringComparison.Ordinal);
        var client = await env.StartHostAsync(worker: false);
        env.StartWorker("worker-a", settings: new Dictionary<string, string?> { ["ConnectionStrings:Blobs"] = blobs, ["Pipeline:StoreOutageRetryDelay"] = "00:00:02" });

        // The probe writes its outputs at the end: the store disappears while it works.
        var runId = await PipelineTestEnvironment.LaunchAsync(client, Specs.Probe(("only", "{ \"seconds\": 3 }", [])));
        await PipelineTestEnvironment.WaitUntilAsync(client, runId, r => r.Stages[0].Status == StageStatus.Running, Timeout, "start");
        proxy.Stop();
        var retrying = await PipelineTestEnvironment.WaitUntilAsync(client, runId, r => r.Stages[0].Attempt == 2 || r.IsFinished, Timeout, "fail and be retried");
        proxy.Start();
        var run = await PipelineTestEnvironment.WaitForRunAsync(client, runId, Timeout);

        Assert.True(run.Status == RunStatus.Succeeded, PipelineTestEnvironment.Describe(run) + env.WorkerLogs);
        var outage = Assert.Single(run.Stages[0].History, h => h.Reason.StartsWith(StoreOutage.ReasonPrefix, StringComparison.Ordinal));
        Assert.Contains("automatic retry 1 of 3", outage.Reason, StringComparison.Ordinal);
        Assert.Equal(StageStatus.Queued, outage.To);
        Assert.DoesNotContain(run.Stages[0].History, h => h.To == StageStatus.Failed);
        Assert.Equal(2, retrying.Stages[0].Attempt);
    }

    [Fact]
    public async Task A_cached_input_corrupted_in_place_is_rebuilt_by_its_producer_in_the_same_run()
    {
        await using var env = await PipelineTestEnvironment.CreateAsync();
        var host = await env.StartHostAsync(worker: true);
        var spec = Specs.Probe(("source", "{ \"note\": \"heal\", \"payload_bytes\": 4096 }", []), ("consumer", "{}", ["source"]));
        var first = await PipelineTestEnvironment.WaitForRunAsync(host, await PipelineTestEnvironment.LaunchAsync(host, spec), Timeout);
        var payload = Stage(first, "source").Artifacts.Single(x => x.Path.EndsWith("/payload.bin", StringComparison.Ordinal));
        var store = (FileSystemArtifactStore)host.Services.GetRequiredService<IArtifactStore>();
        // Same size, one bit flipped: the recorded size and sha256 still match, so only reading the bytes shows it.
        var bytes = await File.ReadAllBytesAsync(store.FullPath(payload.Path));
        bytes[100] ^= 0x01;
        await File.WriteAllBytesAsync(store.FullPath(payload.Path), bytes);

        var second = await PipelineTestEnvironment.WaitForRunAsync(host, await PipelineTestEnvironment.LaunchAsync(host, spec, "stages.consumer.params.note=again"), Timeout);

        Assert.True(second.Status == RunStatus.Succeeded, PipelineTestEnvironment.Describe(second));
        var source = Stage(second, "source");
        Assert.Equal(StageStatus.Succeeded, source.Status); // rebuilt, not reused
        Assert.Contains(source.History, h => h.From == StageStatus.Cached && h.To == StageStatus.Pending && h.Reason.Contains("found corrupt by 'consumer'", StringComparison.Ordinal));
        var consumer = Stage(second, "consumer");
        Assert.Equal(2, consumer.Attempt);
        Assert.Contains(consumer.History, h => h.Reason.StartsWith("found its input corrupt: " + payload.Path, StringComparison.Ordinal));
        Assert.Equal(payload.Sha256, source.Artifacts.Single(x => x.Path.EndsWith("/payload.bin", StringComparison.Ordinal)).Sha256);

        // A succeeded stage whose artifacts were lost is re-run in place, and the stages after it follow.
        File.Delete(store.FullPath(source.Artifacts[0].Path));
        await host.Services.GetRequiredService<StageEngine>().RerunAsync(source.Id);
        var rerun = await PipelineTestEnvironment.WaitForRunAsync(host, second.Id, Timeout);
        Assert.True(rerun.Status == RunStatus.Succeeded, PipelineTestEnvironment.Describe(rerun));
        Assert.Equal(3, Stage(rerun, "source").Attempt);
        Assert.Equal(3, Stage(rerun, "consumer").Attempt);
        foreach (var a in rerun.Stages.SelectMany(s => s.Artifacts)) Assert.NotNull(await store.GetInfoAsync(a.Path));
    }
}
