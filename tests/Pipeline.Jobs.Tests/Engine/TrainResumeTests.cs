using Microsoft.Extensions.DependencyInjection;
using Pipeline.Jobs.Engine;
using Pipeline.Jobs.RunStore;
using Pipeline.Jobs.Runs;

namespace Pipeline.Jobs.Tests.Engine;

/// <summary>
/// Training survives what happens to GPU VMs: a worker killed without warning (spot eviction, OOM killer) or a run
/// cancelled and retried. The new attempt continues from the newest checkpoint and ends with the planned step count.
/// </summary>
public class TrainResumeTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(150);

    private static string Spec(int steps, int every, int train = 256) => Specs.Train(steps, every, train);

    private static StageDetail Train(RunDetail run) => run.Stages.Single(s => s.Name == "train");

    [Fact]
    public async Task A_training_stage_whose_worker_is_killed_resumes_from_its_checkpoint_on_the_other_worker()
    {
        await using var env = await PipelineTestEnvironment.CreateAsync(azureBlobs: true);
        var client = await env.StartHostAsync(worker: false);
        var a = env.StartWorker("worker-a");
        var b = env.StartWorker("worker-b");

        var runId = await PipelineTestEnvironment.LaunchAsync(client, Spec(steps: 60, every: 5));
        var running = await PipelineTestEnvironment.WaitUntilAsync(client, runId,
            r => Train(r) is { Status: StageStatus.Running, Progress: >= 0.3 }, Timeout, "train a third of its steps");
        var victim = Train(running).Worker == "worker-a" ? a : b;
        victim.Kill();

        var run = await PipelineTestEnvironment.WaitForRunAsync(client, runId, Timeout);

        Assert.True(run.Status == RunStatus.Succeeded, PipelineTestEnvironment.Describe(run) + env.WorkerLogs);
        var train = Train(run);
        Assert.Equal(2, train.Attempt);
        Assert.EndsWith(victim == a ? "worker-b" : "worker-a", train.History.Last(h => h.To == StageStatus.Running).Reason, StringComparison.Ordinal);
        var resumedFrom = (long)train.Summary!["resumed_from_step"]!;
        // Checkpoints every 5 steps and at each epoch end (8 steps): it was killed after step 18 at the earliest.
        Assert.True(resumedFrom >= 15 && (resumedFrom % 5 == 0 || resumedFrom % 8 == 0), $"resumed from step {resumedFrom}");
        Assert.Equal(60, (long)train.Summary["steps"]!);
    }

    [Fact]
    public async Task A_cancelled_training_stage_checkpoints_and_a_retry_continues_from_there()
    {
        await using var env = await PipelineTestEnvironment.CreateAsync();
        var host = await env.StartHostAsync(worker: true);

        // No checkpoint by steps, time (10 min) or epoch end (64 steps): the retry can only resume from the one written on cancellation.
        var runId = await PipelineTestEnvironment.LaunchAsync(host, Spec(steps: 40, every: 1000, train: 2048));
        await PipelineTestEnvironment.WaitUntilAsync(host, runId, r => Train(r) is { Status: StageStatus.Running, Progress: >= 0.25 }, Timeout, "train a quarter");
        await host.Services.GetRequiredService<StageEngine>().CancelRunAsync(runId, CancellationToken.None);
        var cancelled = await PipelineTestEnvironment.WaitForRunAsync(host, runId, Timeout);
        Assert.Equal(StageStatus.Cancelled, Train(cancelled).Status);

        await host.Services.GetRequiredService<StageEngine>().RetryRunAsync(runId, CancellationToken.None);
        var run = await PipelineTestEnvironment.WaitForRunAsync(host, runId, Timeout);

        Assert.True(run.Status == RunStatus.Succeeded, PipelineTestEnvironment.Describe(run));
        var resumedFrom = (long)Train(run).Summary!["resumed_from_step"]!;
        Assert.InRange(resumedFrom, 10, 39);
        Assert.Equal(40, (long)Train(run).Summary!["steps"]!);
    }

    [Fact]
    public async Task A_worker_stopped_with_sigterm_checkpoints_and_the_next_worker_continues_from_there()
    {
        await using var env = await PipelineTestEnvironment.CreateAsync();
        var client = await env.StartHostAsync(worker: false);
        var a = env.StartWorker("worker-a");

        var runId = await PipelineTestEnvironment.LaunchAsync(client, Spec(steps: 40, every: 1000, train: 2048));
        await PipelineTestEnvironment.WaitUntilAsync(client, runId, r => Train(r) is { Status: StageStatus.Running, Progress: >= 0.25 }, Timeout, "train a quarter");
        a.Terminate();
        env.StartWorker("worker-b");
        var run = await PipelineTestEnvironment.WaitForRunAsync(client, runId, Timeout);

        Assert.True(run.Status == RunStatus.Succeeded, PipelineTestEnvironment.Describe(run) + env.WorkerLogs);
        Assert.Equal(1, Train(run).Attempt); // handed back, not lost
        Assert.InRange((long)Train(run).Summary!["resumed_from_step"]!, 10, 39);
        Assert.Equal(40, (long)Train(run).Summary!["steps"]!);
    }
}
