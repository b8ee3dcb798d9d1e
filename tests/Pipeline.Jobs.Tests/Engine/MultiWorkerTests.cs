using Microsoft.EntityFrameworkCore;
using Pipeline.Jobs.RunStore;

namespace Pipeline.Jobs.Tests.Engine;

/// <summary>
/// Several real `pipeline worker` processes on one PostgreSQL database (and Azurite for artifacts), as on a cluster
/// of GPU VMs: the test process only launches runs and reads the run store.
/// </summary>
public class MultiWorkerTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task Two_worker_processes_run_a_fan_out_fan_in_dag_and_queue_the_join_exactly_once()
    {
        await using var env = await PipelineTestEnvironment.CreateAsync(azureBlobs: true);
        var client = await env.StartHostAsync(worker: false);
        env.StartWorker("worker-a", workers: 2);
        env.StartWorker("worker-b", workers: 2);

        // Six short branches finish close together on four worker threads in two processes: the join's promotion races.
        var runId = await PipelineTestEnvironment.LaunchAsync(client, Specs.FanOutFanIn(6, 1.0, "fan"));
        var run = await PipelineTestEnvironment.WaitForRunAsync(client, runId, Timeout);

        Assert.True(run.Status == RunStatus.Succeeded, PipelineTestEnvironment.Describe(run) + env.WorkerLogs);
        var join = run.Stages.Single(s => s.Name == "join");
        Assert.Single(join.History, h => h.To == StageStatus.Queued);
        Assert.Single(join.History, h => h.To == StageStatus.Running);
        Assert.Equal(1, join.Attempt);
        Assert.All(run.Stages, s => Assert.Equal(1, s.Attempt));
        var workers = await WorkersThatRanAsync(env, runId);
        Assert.Contains(workers, w => w == "worker-a");
        Assert.Contains(workers, w => w == "worker-b");
        // The join read all six branches' outputs through the artifact store (verified sha256 on read).
        Assert.Equal(6, join.Summary!["inputs"]!.GetValue<int>() / 2);
    }

    [Fact]
    public async Task A_stage_whose_worker_is_killed_completes_on_the_other_worker()
    {
        await using var env = await PipelineTestEnvironment.CreateAsync();
        var client = await env.StartHostAsync(worker: false);
        var a = env.StartWorker("worker-a");
        var b = env.StartWorker("worker-b");

        var runId = await PipelineTestEnvironment.LaunchAsync(client, Specs.Probe(("long", "{ \"seconds\": 6 }", []), ("after", "{}", ["long"])));
        var running = await PipelineTestEnvironment.WaitUntilAsync(client, runId,
            r => r.Stages[0].Status == StageStatus.Running && r.Stages[0].Progress > 0.1, Timeout, "get going");
        var victim = running.Stages[0].Worker == "worker-a" ? a : b;
        victim.Kill();

        var run = await PipelineTestEnvironment.WaitForRunAsync(client, runId, Timeout);

        Assert.True(run.Status == RunStatus.Succeeded, PipelineTestEnvironment.Describe(run) + env.WorkerLogs);
        var stage = run.Stages[0];
        Assert.Equal(2, stage.Attempt);
        Assert.Contains(stage.History, h => h.Reason.Contains($"worker {victim.Name} lost", StringComparison.Ordinal));
        Assert.Equal(victim == a ? "worker-b" : "worker-a",
            stage.History.Last(h => h.To == StageStatus.Running).Reason.Replace("started on ", "", StringComparison.Ordinal));
        Assert.Equal(RunStatus.Succeeded, run.Status);
        Assert.Equal(StageStatus.Succeeded, run.Stages[1].Status);
    }

    [Fact]
    public async Task A_worker_stopped_with_sigterm_hands_its_stage_back_at_once_for_another_worker()
    {
        await using var env = await PipelineTestEnvironment.CreateAsync();
        var client = await env.StartHostAsync(worker: false);
        var a = env.StartWorker("worker-a");
        var runId = await PipelineTestEnvironment.LaunchAsync(client, Specs.Probe(("long", "{ \"seconds\": 4 }", [])));
        await PipelineTestEnvironment.WaitUntilAsync(client, runId, r => r.Stages[0].Status == StageStatus.Running, Timeout, "start");

        a.Terminate();
        var handedBack = await PipelineTestEnvironment.WaitUntilAsync(client, runId, r => r.Stages[0].Status == StageStatus.Queued, TimeSpan.FromSeconds(20), "be handed back");
        env.StartWorker("worker-b");
        var run = await PipelineTestEnvironment.WaitForRunAsync(client, runId, Timeout);

        Assert.True(run.Status == RunStatus.Succeeded, PipelineTestEnvironment.Describe(run) + env.WorkerLogs);
        Assert.Contains(handedBack.Stages[0].History, h => h.Reason == "worker worker-a shut down");
        Assert.Equal(1, run.Stages[0].Attempt);
        Assert.EndsWith("worker-b", run.Stages[0].History.Last(h => h.To == StageStatus.Running).Reason, StringComparison.Ordinal);
    }

    private static async Task<List<string>> WorkersThatRanAsync(PipelineTestEnvironment env, long runId)
    {
        await using var db = env.OpenDb();
        var reasons = await db.StageTransitions.Where(t => t.To == StageStatus.Running && db.Stages.Any(s => s.Id == t.StageId && s.RunId == runId))
            .Select(t => t.Reason).ToListAsync();
        return [.. reasons.Select(r => r.Replace("started on ", "", StringComparison.Ordinal)).Distinct()];
    }
}
