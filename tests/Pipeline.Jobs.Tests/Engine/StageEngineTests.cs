using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Pipeline.Jobs.Engine;
using Pipeline.Jobs.RunStore;
using Pipeline.Stages.Artifacts;
using Pipeline.Jobs.Runs;

namespace Pipeline.Jobs.Tests.Engine;

/// <summary>The engine on real PostgreSQL + Hangfire.PostgreSql, with the worker in this process.</summary>
public class StageEngineTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task A_rerun_with_the_same_inputs_reuses_cached_outputs_and_no_cache_runs_again()
    {
        await using var env = await PipelineTestEnvironment.CreateAsync();
        var host = await env.StartHostAsync(worker: true);
        var spec = Specs.FanOutFanIn(2, 0.2);

        var first = await PipelineTestEnvironment.WaitForRunAsync(host, await PipelineTestEnvironment.LaunchAsync(host, spec), Timeout);
        var second = await PipelineTestEnvironment.WaitForRunAsync(host, await PipelineTestEnvironment.LaunchAsync(host, spec), Timeout);

        Assert.Equal(RunStatus.Succeeded, first.Status);
        Assert.Equal(RunStatus.Succeeded, second.Status);
        Assert.All(first.Stages, s => Assert.Equal(StageStatus.Succeeded, s.Status));
        Assert.All(second.Stages, s => Assert.Equal(StageStatus.Cached, s.Status));
        foreach (var (a, b) in first.Stages.Zip(second.Stages))
        {
            Assert.Equal(a.ContentKey, b.ContentKey);
            Assert.Equal(a.Id, b.CachedFromStageId);
            Assert.Equal(a.Artifacts.Select(x => x.Sha256), b.Artifacts.Select(x => x.Sha256));
        }

        var launcher = host.Services.GetRequiredService<Pipeline.Jobs.Runs.RunLauncher>();
        var (forcedId, _) = await launcher.LaunchSpecAsync(spec, "test", null, noCache: true);
        var forced = await PipelineTestEnvironment.WaitForRunAsync(host, forcedId, Timeout);
        Assert.All(forced.Stages, s => Assert.Equal(StageStatus.Succeeded, s.Status));
    }

    [Fact]
    public async Task A_cached_stage_whose_artifact_was_damaged_runs_again()
    {
        await using var env = await PipelineTestEnvironment.CreateAsync();
        var host = await env.StartHostAsync(worker: true);
        var spec = Specs.Probe(("only", "{ \"note\": \"damaged\" }", []));
        var first = await PipelineTestEnvironment.WaitForRunAsync(host, await PipelineTestEnvironment.LaunchAsync(host, spec), Timeout);
        var store = (FileSystemArtifactStore)host.Services.GetRequiredService<IArtifactStore>();
        await File.AppendAllTextAsync(store.FullPath(first.Stages[0].Artifacts[0].Path), "tampered");

        var second = await PipelineTestEnvironment.WaitForRunAsync(host, await PipelineTestEnvironment.LaunchAsync(host, spec), Timeout);

        Assert.Equal(StageStatus.Succeeded, second.Stages[0].Status);
        Assert.Null(second.Stages[0].CachedFromStageId);
    }

    [Fact]
    public async Task A_failure_blocks_dependents_and_retry_resumes_the_dag()
    {
        await using var env = await PipelineTestEnvironment.CreateAsync();
        var host = await env.StartHostAsync(worker: true);
        var spec = Specs.Probe(("a", "{}", []), ("b", "{ \"fail_attempts\": 1 }", ["a"]), ("c", "{}", ["b"]), ("d", "{}", ["c"]));

        var failed = await PipelineTestEnvironment.WaitForRunAsync(host, await PipelineTestEnvironment.LaunchAsync(host, spec), Timeout);

        Assert.Equal(RunStatus.Failed, failed.Status);
        var b = failed.Stages.Single(s => s.Name == "b");
        Assert.Equal(StageStatus.Failed, b.Status);
        Assert.Contains("configured to fail", b.Error);
        Assert.Empty(b.Artifacts);
        Assert.All(failed.Stages.Where(s => s.Name is "c" or "d"), s => Assert.Equal(StageStatus.Blocked, s.Status));

        await host.Services.GetRequiredService<StageEngine>().RetryAsync(b.Id);
        var resumed = await PipelineTestEnvironment.WaitForRunAsync(host, failed.Id, Timeout);

        Assert.Equal(RunStatus.Succeeded, resumed.Status);
        Assert.Equal(2, resumed.Stages.Single(s => s.Name == "b").Attempt);
        Assert.Equal(1, resumed.Stages.Single(s => s.Name == "a").Attempt);
        Assert.Contains(resumed.Stages.Single(s => s.Name == "b").History, h => h.Reason == "retry requested");
    }

    [Fact]
    public async Task Cancel_fires_the_running_stage_token_and_ends_in_cancelled()
    {
        await using var env = await PipelineTestEnvironment.CreateAsync();
        var host = await env.StartHostAsync(worker: true);
        var spec = Specs.Probe(("slow", "{ \"seconds\": 120 }", []), ("after", "{}", ["slow"]));
        var runId = await PipelineTestEnvironment.LaunchAsync(host, spec);
        var running = await PipelineTestEnvironment.WaitUntilAsync(host, runId, r => r.Stages[0].Status == StageStatus.Running, Timeout, "start");

        var clock = System.Diagnostics.Stopwatch.StartNew();
        await host.Services.GetRequiredService<StageEngine>().CancelAsync(running.Stages[0].Id);
        var done = await PipelineTestEnvironment.WaitForRunAsync(host, runId, Timeout);

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"cancellation took {clock.Elapsed}");
        Assert.Equal(RunStatus.Cancelled, done.Status);
        Assert.Equal(StageStatus.Cancelled, done.Stages[0].Status);
        Assert.Equal(StageStatus.Blocked, done.Stages[1].Status);
        Assert.Empty(done.Stages[0].Artifacts);
    }

    [Fact]
    public async Task The_reconciler_requeues_a_queued_stage_whose_job_is_gone()
    {
        await using var env = await PipelineTestEnvironment.CreateAsync();
        var client = await env.StartHostAsync(worker: false);
        var runId = await PipelineTestEnvironment.LaunchAsync(client, Specs.Probe(("only", "{}", [])));
        await using (var db = env.OpenDb())
        {
            // What an embedded restart leaves: the stage is Queued but Hangfire no longer has its job.
            var jobId = await db.Stages.Where(s => s.RunId == runId).Select(s => s.JobId).SingleAsync();
            Hangfire.BackgroundJob.Delete(jobId);
        }

        var worker = await env.StartHostAsync(worker: true, "worker-after-restart");
        var run = await PipelineTestEnvironment.WaitForRunAsync(worker, runId, Timeout);

        Assert.Equal(RunStatus.Succeeded, run.Status);
        Assert.Equal(1, run.Stages[0].Attempt);
    }

    [Fact]
    public async Task The_reconciler_finishes_a_run_whose_stages_all_ended_but_whose_status_was_left_running()
    {
        await using var env = await PipelineTestEnvironment.CreateAsync();
        var worker = await env.StartHostAsync(worker: true);
        var runId = await PipelineTestEnvironment.LaunchAsync(worker, Specs.Probe(("only", "{}", [])));
        await PipelineTestEnvironment.WaitForRunAsync(worker, runId, Timeout);
        await using (var db = env.OpenDb())
        {
            // What a process dying between a stage's success and the run's refresh leaves (or a lost race of two refreshes).
            await db.Runs.Where(r => r.Id == runId).ExecuteUpdateAsync(r => r.SetProperty(x => x.Status, RunStatus.Running).SetProperty(x => x.FinishedAt, (DateTime?)null));
        }

        var run = await PipelineTestEnvironment.WaitForRunAsync(worker, runId, Timeout);

        Assert.Equal(RunStatus.Succeeded, run.Status);
        Assert.NotNull(run.FinishedAt);
    }
}
