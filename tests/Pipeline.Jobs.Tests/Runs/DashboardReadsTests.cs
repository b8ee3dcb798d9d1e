using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Pipeline.Jobs.Engine;
using Pipeline.Jobs.RunStore;
using Pipeline.Jobs.Runs;
using Pipeline.Jobs.Tests.Engine;
using Pipeline.Stages.Artifacts;

namespace Pipeline.Jobs.Tests.Runs;

/// <summary>What the dashboard reads through the Jobs services, on real PostgreSQL: pages of runs, kept logs, the live feed, previews.</summary>
public class DashboardReadsTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task Run_pages_filter_sort_and_page_in_the_store()
    {
        await using var env = await PipelineTestEnvironment.CreateAsync();
        var host = await env.StartHostAsync(worker: false);
        var launcher = host.Services.GetRequiredService<RunLauncher>();
        for (var i = 0; i < 23; i++)
        {
            var name = i % 3 == 0 ? $"nightly-{i:D2}" : $"adhoc-{i:D2}";
            await launcher.LaunchSpecAsync(Specs.Probe(("only", "{}", [])).Replace("engine-test", name), "probe-dag", null, noCache: false);
        }
        var queries = host.Services.GetRequiredService<RunQueries>();

        var first = await queries.PageAsync(new RunListQuery(Page: 1, PageSize: 10));
        var third = await queries.PageAsync(new RunListQuery(Page: 3, PageSize: 10));
        var nightly = await queries.PageAsync(new RunListQuery(Text: "NIGHTLY", Sort: RunSort.Name));
        var none = await queries.PageAsync(new RunListQuery(Status: RunStatus.Succeeded));

        Assert.Equal(23, first.Total);
        Assert.Equal(10, first.Rows.Count);
        Assert.Equal("adhoc-22", first.Rows[0].Name); // newest first
        Assert.Equal(3, third.Rows.Count);
        Assert.Equal(8, nightly.Total);
        Assert.Equal(nightly.Rows.Select(r => r.Name).Order(StringComparer.Ordinal), nightly.Rows.Select(r => r.Name));
        // No worker: each run's only stage waits queued.
        Assert.All(first.Rows, r => Assert.Equal(("manual", RunStatus.Running, 1, 0.0, 0.0), (r.Trigger, r.Status, r.Stages, r.Progress, r.GpuHours)));
        Assert.Equal(0, none.Total);
    }

    [Fact]
    public async Task A_stage_log_is_stored_while_it_runs_and_each_attempt_keeps_its_whole_log_as_an_artifact()
    {
        await using var env = await PipelineTestEnvironment.CreateAsync();
        var host = await env.StartHostAsync(worker: true);
        var queries = host.Services.GetRequiredService<RunQueries>();
        var spec = Specs.Probe(("work", """{ "steps": 30, "seconds": 6, "fail_attempts": 1 }""", []), ("after", "{}", ["work"]));
        var runId = await PipelineTestEnvironment.LaunchAsync(host, spec);

        var running = await PipelineTestEnvironment.WaitUntilAsync(host, runId, r => r.Stages[0].Progress > 0.3, Timeout, "the probe is a third through");
        var tail = await queries.LogTailAsync(running.Stages[0].Id);
        Assert.Contains(tail, l => l.Message.Contains("step 5/30", StringComparison.Ordinal));
        Assert.Contains(tail, l => l.Message.Contains("attempt 1 started", StringComparison.Ordinal));

        var failed = await PipelineTestEnvironment.WaitForRunAsync(host, runId, Timeout);
        Assert.Equal(StageStatus.Failed, failed.Stages[0].Status);
        await host.Services.GetRequiredService<StageEngine>().RetryAsync(failed.Stages[0].Id);
        var done = await PipelineTestEnvironment.WaitUntilAsync(host, runId, r => r.Status == RunStatus.Succeeded, Timeout, "the retried run succeeds");

        var work = done.Stages[0];
        Assert.Equal(["work.attempt-1.log", "work.attempt-2.log"], work.Logs.Select(l => Path.GetFileName(l.Path)));
        Assert.DoesNotContain(work.Artifacts, a => a.Path.Contains("/logs/", StringComparison.Ordinal));
        var store = host.Services.GetRequiredService<IArtifactStore>();
        await using (var s = await store.OpenReadAsync(work.Logs[0].Path, work.Logs[0].Sha256))
        {
            var text = await new StreamReader(s).ReadToEndAsync();
            Assert.Contains("step 30/30", text);
            Assert.Contains("configured to fail its first 1 attempt", text);
        }
        var firstAttempt = await queries.LogTailAsync(work.Id, attempt: 1);
        Assert.True(firstAttempt.Count(l => l.Message.Contains("step 30/30", StringComparison.Ordinal)) == 1, string.Join("\n", firstAttempt.Select(l => $"{l.Id} {l.Level} {l.Message}")));
        // The dependent saw the work stage's outputs, not its logs.
        var after = done.Stages[1];
        Assert.Equal(work.Artifacts.Count, after.Summary!["inputs"]!.GetValue<int>());
    }

    [Fact]
    public async Task The_live_feed_gives_a_snapshot_first_then_only_what_is_new_and_stops_with_its_last_viewer()
    {
        await using var env = await PipelineTestEnvironment.CreateAsync();
        var host = await env.StartHostAsync(worker: true);
        var feed = host.Services.GetRequiredService<RunFeed>();
        var runId = await PipelineTestEnvironment.LaunchAsync(host, Specs.Probe(("work", """{ "steps": 20, "seconds": 5 }""", [])));
        var updates = new ConcurrentQueue<RunUpdate>();

        using (var viewer = feed.Subscribe(runId, u => { updates.Enqueue(u); return Task.CompletedTask; }))
        using (var second = feed.Subscribe(runId, _ => Task.CompletedTask))
        {
            Assert.Equal(1, feed.WatchedRuns);
            await PipelineTestEnvironment.WaitForRunAsync(host, runId, Timeout);
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
            while (!updates.Any(u => u.Run?.Status == RunStatus.Succeeded) && DateTime.UtcNow < deadline) await Task.Delay(200);
        }
        Assert.Equal(0, feed.WatchedRuns);

        var all = updates.ToList();
        Assert.True(all[0].IsFirst && all[0].Run is not null);
        Assert.All(all.Skip(1), u => Assert.False(u.IsFirst));
        Assert.Contains(all, u => u.Run?.Status == RunStatus.Succeeded);
        var points = all.SelectMany(u => u.Metrics).Where(m => m.Name == "curve").ToList();
        Assert.Equal(points.Select(p => p.Id).Distinct().Count(), points.Count); // nothing twice
        Assert.Equal(Enumerable.Range(1, 20).Select(i => (long?)i), points.Select(p => p.Step).Order());
        var lines = all.SelectMany(u => u.Logs).ToList();
        Assert.Equal(lines.Select(l => l.Id).Distinct().Count(), lines.Count);
        Assert.Contains(lines, l => l.Message.Contains("step 20/20", StringComparison.Ordinal));
        Assert.True(all.Count(u => !u.IsFirst && u.Metrics.Count > 0) >= 2, "points arrived over several updates, as they were stored");
    }

    [Fact]
    public async Task A_preview_shows_which_stages_the_cache_would_serve_and_run_again_from_a_stage_recomputes_only_from_there()
    {
        await using var env = await PipelineTestEnvironment.CreateAsync();
        var host = await env.StartHostAsync(worker: true);
        var launcher = host.Services.GetRequiredService<RunLauncher>();
        var spec = Specs.Probe(("a", """{ "note": "a" }""", []), ("b", """{ "note": "b" }""", ["a"]), ("c", """{ "note": "c" }""", ["b"]));

        var before = await launcher.PreviewAsync(null, spec, null);
        Assert.All(before.Stages, s => Assert.False(s.FromCache));
        Assert.NotNull(before.Stages[0].ContentKey);
        Assert.Null(before.Stages[1].ContentKey); // its input is not known before 'a' runs
        var first = await PipelineTestEnvironment.WaitForRunAsync(host, await PipelineTestEnvironment.LaunchAsync(host, spec), Timeout);

        var again = await launcher.PreviewAsync(null, spec, null);
        var changed = await launcher.PreviewAsync(null, spec, ["stages.b.params.note=other"]);
        Assert.Equal(first.Stages.Select(s => (long?)s.Id), again.Stages.Select(s => s.CachedFrom));
        Assert.Equal(first.Stages.Select(s => s.ContentKey), again.Stages.Select(s => s.ContentKey));
        Assert.Equal([true, false, false], changed.Stages.Select(s => s.FromCache));
        Assert.Null(changed.Stages[2].ContentKey);
        var bad = await Assert.ThrowsAsync<Pipeline.Jobs.RunSpecs.RunSpecException>(() => launcher.PreviewAsync(null, spec, ["stages.b.params.seconds=-1"]));
        Assert.Contains(bad.Errors, e => e.Field.Contains("seconds", StringComparison.Ordinal));

        var (rerunId, _) = await launcher.RunAgainFromAsync(first.Stages[1].Id);
        var rerun = await PipelineTestEnvironment.WaitForRunAsync(host, rerunId, Timeout);
        Assert.Equal([StageStatus.Cached, StageStatus.Succeeded, StageStatus.Succeeded], rerun.Stages.Select(s => s.Status));
        Assert.Equal(first.Stages.Select(s => s.ContentKey), rerun.Stages.Select(s => s.ContentKey));
    }

    [Fact]
    public void Downsampling_keeps_the_first_and_last_points_and_each_buckets_extremes_in_order()
    {
        var points = Enumerable.Range(0, 10_000)
            .Select(i => new MetricPointView(i + 1, 1, "loss", i, i == 5_000 ? 99 : i == 7_000 ? -99 : Math.Sin(i / 100.0), DateTime.UnixEpoch)).ToList();

        var kept = RunQueries.Downsample(points, 200);

        Assert.InRange(kept.Count, 100, 200);
        Assert.Equal(points[0], kept[0]);
        Assert.Equal(points[^1], kept[^1]);
        Assert.Contains(kept, p => p.Value == 99);
        Assert.Contains(kept, p => p.Value == -99);
        Assert.Equal(kept.Select(p => p.Id).Order(), kept.Select(p => p.Id));
        Assert.Same(points, RunQueries.Downsample(points, 20_000));
    }
}
