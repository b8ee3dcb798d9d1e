using Microsoft.Extensions.DependencyInjection;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Pipeline.Jobs.RunStore;
using Pipeline.Jobs.Tests.Engine;

namespace Pipeline.Jobs.Tests.Search;

/// <summary>
/// Searches on the real engine (PostgreSQL): probe trials with a synthetic objective stand in for training, so that the
/// engine's part — proposals as results arrive, at most <c>parallel</c> at once, the budget, failures, pruning, crashes
/// — is tested in seconds.
/// </summary>
public class SearchRunTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(120);

    /// <summary>source → search (probe trials) → after (a probe, or the leaderboard); <paramref name="search"/> is the search's params body.</summary>
    public static string Spec(string search, string after = "probe") => $$"""
        {
          "name": "search-test",
          "stages": {
            "source": { "kind": "probe" },
            "search": { "kind": "search", "depends_on": ["source"], "params": {{search}} },
            "after": { "kind": "{{after}}", "depends_on": ["search"] }
          }
        }
        """;

    private static string Probe(string trialParams, string space, string extra = "") => $$"""
        {
          "trial": { "kind": "probe", "params": {{trialParams}} },
          "space": {{space}},
          "objective": { "metric": "objective", "direction": "maximize" }
          {{extra}}
        }
        """;

    private static async Task<List<SearchTrial>> TrialsAsync(PipelineTestEnvironment env, long runId)
    {
        await using var db = env.OpenDb();
        var search = await db.Stages.SingleAsync(s => s.RunId == runId && s.Name == "search");
        return await db.SearchTrials.AsNoTracking().Where(t => t.SearchStageId == search.Id).OrderBy(t => t.Number).ToListAsync();
    }

    [Fact]
    public async Task A_search_runs_its_budget_at_most_parallel_at_a_time_and_its_dependent_after_all_trials()
    {
        await using var env = await PipelineTestEnvironment.CreateAsync();
        var host = await env.StartHostAsync(worker: true, settings: new Dictionary<string, string?> { ["Pipeline:WorkerCount"] = "4" });
        var spec = Spec(Probe("{ \"seconds\": 0.3 }", """{ "objective": { "kind": "uniform", "low": 0, "high": 1 } }""",
            """, "strategy": "random", "seed": 3, "budget": 6, "parallel": 2"""), after: "leaderboard");

        var runId = await PipelineTestEnvironment.LaunchAsync(host, spec);
        var run = await PipelineTestEnvironment.WaitForRunAsync(host, runId, Timeout);

        Assert.True(run.Status == RunStatus.Succeeded, PipelineTestEnvironment.Describe(run));
        var trials = await TrialsAsync(env, runId);
        Assert.Equal(6, trials.Count);
        Assert.All(trials, t => Assert.Equal(SearchTrialStatus.Completed, t.Status));
        Assert.Equal([0, 1, 2, 3, 4, 5], trials.Select(t => t.Order!.Value).Order());
        var trialStages = run.Stages.Where(s => s.Name.StartsWith("search-t", StringComparison.Ordinal)).ToList();
        Assert.Equal(6, trialStages.Count);
        // Never more than two trials at once: each trial started before the one two places earlier had finished is a violation.
        var spans = trialStages.Select(s => (Start: s.History.First(h => h.To == StageStatus.Queued).At, End: s.History[^1].At)).ToList();
        Assert.All(spans, a => Assert.True(spans.Count(b => b.Start <= a.Start && b.End > a.Start) <= 2, "more than 2 trials overlapped"));
        var after = run.Stages.Single(s => s.Name == "after");
        Assert.True(after.History.First(h => h.To == StageStatus.Queued).At >= spans.Max(s => s.End));
        var search = run.Stages.Single(s => s.Name == "search");
        Assert.Equal(6, search.Summary!["completed"]!.GetValue<int>());
        Assert.Equal(trials.Max(t => t.Objective!.Value), search.Summary["best_objective"]!.GetValue<double>(), 6);
        Assert.Single(search.Artifacts, a => a.Path.EndsWith("/trials.json", StringComparison.Ordinal));
        // `run --wait` ends with the leaderboard's rows, best first.
        using var printed = new StringWriter();
        Pipeline.Jobs.Cli.CliOutput.PrintResults(await host.Services.GetRequiredService<Pipeline.Jobs.Runs.RunResults>().CollectAsync(run), printed);
        var lines = printed.ToString().Split('\n');
        Assert.Contains(lines, l => l.StartsWith("after: search 'search' (random), maximize objective of train; 6 completed", StringComparison.Ordinal));
        var best = trials.MaxBy(t => t.Objective)!;
        Assert.Matches($@"^  1 +{best.Number} +completed +{System.Text.RegularExpressions.Regex.Escape(Pipeline.Jobs.Runs.Headlines.Metric("objective", best.Objective!.Value))}", lines.First(l => l.StartsWith("  1 ", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Failed_trials_within_allow_failures_leave_the_search_succeeded_and_beyond_it_fail_the_search()
    {
        await using var env = await PipelineTestEnvironment.CreateAsync();
        var host = await env.StartHostAsync(worker: true, settings: new Dictionary<string, string?> { ["Pipeline:WorkerCount"] = "2" });
        // fail_attempts 100: that trial fails; the grid gives exactly two failing trials among four.
        var space = """{ "fail_attempts": { "kind": "choice", "values": [0, 100] }, "objective": { "kind": "choice", "values": [0.2, 0.8] } }""";

        var tolerant = await PipelineTestEnvironment.LaunchAsync(host, Spec(Probe("{}", space, """, "strategy": "grid", "budget": 4, "parallel": 2, "allow_failures": 2""")));
        var strict = await PipelineTestEnvironment.LaunchAsync(host, Spec(Probe("{}", space, """, "strategy": "grid", "budget": 4, "parallel": 1, "allow_failures": 0""")));
        var ok = await PipelineTestEnvironment.WaitForRunAsync(host, tolerant, Timeout);
        var failed = await PipelineTestEnvironment.WaitForRunAsync(host, strict, Timeout);

        Assert.True(ok.Status == RunStatus.Succeeded, PipelineTestEnvironment.Describe(ok));
        var trials = await TrialsAsync(env, tolerant);
        Assert.Equal(2, trials.Count(t => t.Status == SearchTrialStatus.Failed));
        Assert.Equal(2, trials.Count(t => t.Status == SearchTrialStatus.Completed));
        Assert.Contains("configured to fail", trials.First(t => t.Status == SearchTrialStatus.Failed).Error, StringComparison.Ordinal);

        Assert.Equal(RunStatus.Failed, failed.Status);
        var search = failed.Stages.Single(s => s.Name == "search");
        Assert.Equal(StageStatus.Failed, search.Status);
        Assert.Contains("more than allow_failures (0)", search.Error, StringComparison.Ordinal);
        Assert.Equal(StageStatus.Blocked, failed.Stages.Single(s => s.Name == "after").Status);
        Assert.True((await TrialsAsync(env, strict)).Count < 4, "the search went on after its failure");
    }

    [Fact]
    public async Task Successive_halving_prunes_trials_below_the_top_of_a_rung_and_they_end_pruned_not_failed()
    {
        await using var env = await PipelineTestEnvironment.CreateAsync();
        var host = await env.StartHostAsync(worker: true);
        // One trial at a time in a fixed order: objectives 0.9, 0.1, 0.5, 0.95. With η 2 at the rung (step 4 of 16): the
        // first continues; 0.1 is below 0.9 (pruned); 0.5 is below the best of {0.9, 0.1, 0.5} (⌊3/2⌋ = 1 kept): pruned;
        // 0.95 is the best: continues.
        var spec = Spec(Probe("{ \"steps\": 16 }", """{ "objective": { "kind": "choice", "values": [0.9, 0.1, 0.5, 0.95] } }""",
            """, "strategy": "grid", "budget": 4, "parallel": 1, "pruning": { "min_steps": 4, "max_steps": 16, "reduction_factor": 2 }"""));

        var runId = await PipelineTestEnvironment.LaunchAsync(host, spec);
        var run = await PipelineTestEnvironment.WaitForRunAsync(host, runId, Timeout);

        Assert.True(run.Status == RunStatus.Succeeded, PipelineTestEnvironment.Describe(run));
        var trials = await TrialsAsync(env, runId);
        var byObjective = trials.ToDictionary(t => Math.Round(t.Status == SearchTrialStatus.Pruned ? t.Objective!.Value * 4 : t.Objective!.Value, 2), t => t);
        Assert.Equal(SearchTrialStatus.Completed, byObjective[0.9].Status);
        Assert.Equal(SearchTrialStatus.Pruned, byObjective[0.1].Status);
        Assert.Equal(SearchTrialStatus.Pruned, byObjective[0.5].Status);
        Assert.Equal(SearchTrialStatus.Completed, byObjective[0.95].Status);
        Assert.All(trials.Where(t => t.Status == SearchTrialStatus.Pruned), t => Assert.Equal(4, t.PrunedAtStep));
        var pruned = run.Stages.Where(s => s.Status == StageStatus.Pruned).ToList();
        Assert.Equal(2, pruned.Count);
        Assert.All(pruned, s => Assert.Contains("pruned by successive halving at step 4", s.History[^1].Reason, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Eight_trials_fan_out_over_two_worker_processes_and_survive_one_killed_with_sigkill_none_run_twice()
    {
        await using var env = await PipelineTestEnvironment.CreateAsync();
        var client = await env.StartHostAsync(worker: false);
        var a = env.StartWorker("worker-a", workers: 2);
        env.StartWorker("worker-b", workers: 2);
        // Trials of 3 s, and the kill lands in the first half of one on worker-a: a shorter trial could end between the
        // poll that saw it running and the kill (seen on a loaded CI machine), and then nothing is lost to recover.
        var spec = Spec(Probe("{ \"seconds\": 3 }", """{ "objective": { "kind": "uniform", "low": 0, "high": 1 } }""",
            """, "strategy": "tpe", "seed": 5, "budget": 8, "parallel": 4"""), after: "leaderboard");

        var runId = await PipelineTestEnvironment.LaunchAsync(client, spec);
        await PipelineTestEnvironment.WaitUntilAsync(client, runId,
            r => r.Stages.Count(s => s.Name.StartsWith("search-t", StringComparison.Ordinal) && s.Status == StageStatus.Succeeded) >= 2 &&
                 r.Stages.Any(s => s.Name.StartsWith("search-t", StringComparison.Ordinal) && s.Status == StageStatus.Running && s.Worker == "worker-a" && s.Progress < 0.5),
            Timeout, "have finished two trials with one running on worker-a");
        a.Kill();
        var run = await PipelineTestEnvironment.WaitForRunAsync(client, runId, Timeout);

        Assert.True(run.Status == RunStatus.Succeeded, PipelineTestEnvironment.Describe(run) + env.WorkerLogs);
        var trials = await TrialsAsync(env, runId);
        Assert.Equal(8, trials.Count);
        Assert.All(trials, t => Assert.Equal(SearchTrialStatus.Completed, t.Status));
        var trialStages = run.Stages.Where(s => s.Name.StartsWith("search-t", StringComparison.Ordinal)).ToList();
        Assert.Equal(8, trialStages.Count);
        Assert.All(trialStages, s => Assert.Single(s.History, h => h.To == StageStatus.Succeeded));
        Assert.Contains(trialStages, s => s.History.Any(h => h.Reason.Contains("worker worker-a lost", StringComparison.Ordinal)));
        var leaderboard = run.Stages.Single(s => s.Name == "after");
        Assert.Single(leaderboard.History, h => h.To == StageStatus.Queued);
        Assert.Single(leaderboard.History, h => h.To == StageStatus.Running);
        Assert.Equal(8, leaderboard.Summary!["completed"]!.GetValue<int>());
        Assert.Equal(Math.Round(trials.Max(t => t.Objective!.Value), 4), leaderboard.Summary["best_objective"]!.GetValue<double>());
    }

    [Fact]
    public async Task The_same_seed_and_order_of_results_propose_the_same_trials_past_tpe_start_up_and_another_seed_does_not()
    {
        await using var env = await PipelineTestEnvironment.CreateAsync();
        var host = await env.StartHostAsync(worker: true);
        // One trial at a time: results arrive in proposal order. 12 trials: the last two are proposed by TPE proper.
        string Search(int seed) => Spec(Probe("{}", """{ "objective": { "kind": "uniform", "low": 0, "high": 1 }, "note": { "kind": "choice", "values": ["a", "b", "c"] } }""",
            $$""", "strategy": "tpe", "seed": {{seed}}, "budget": 12, "parallel": 1"""));

        var first = await PipelineTestEnvironment.LaunchAsync(host, Search(7));
        await PipelineTestEnvironment.WaitForRunAsync(host, first, Timeout);
        var again = await PipelineTestEnvironment.LaunchAsync(host, Search(7));
        await PipelineTestEnvironment.WaitForRunAsync(host, again, Timeout);
        var other = await PipelineTestEnvironment.LaunchAsync(host, Search(8));
        await PipelineTestEnvironment.WaitForRunAsync(host, other, Timeout);

        var a = (await TrialsAsync(env, first)).Select(t => t.AssignmentJson).ToList();
        var b = (await TrialsAsync(env, again)).Select(t => t.AssignmentJson).ToList();
        var c = (await TrialsAsync(env, other)).Select(t => t.AssignmentJson).ToList();
        Assert.Equal(12, a.Count);
        Assert.Equal(a, b);
        Assert.NotEqual(a[10..], c[10..]);
    }

    [Fact]
    public async Task Cancelling_a_run_mid_search_cancels_the_search_its_running_trials_and_the_leaderboard()
    {
        await using var env = await PipelineTestEnvironment.CreateAsync();
        var host = await env.StartHostAsync(worker: true, settings: new Dictionary<string, string?> { ["Pipeline:WorkerCount"] = "2" });
        var runId = await PipelineTestEnvironment.LaunchAsync(host, Spec(Probe("{ \"seconds\": 30 }", """{ "objective": { "kind": "uniform", "low": 0, "high": 1 } }""",
            """, "strategy": "random", "budget": 6, "parallel": 2"""), after: "leaderboard"));
        await PipelineTestEnvironment.WaitUntilAsync(host, runId,
            r => r.Stages.Count(s => s.Name.StartsWith("search-t", StringComparison.Ordinal) && s.Status == StageStatus.Running) == 2, Timeout, "run two trials");

        await host.Services.GetRequiredService<Pipeline.Jobs.Engine.StageEngine>().CancelRunAsync(runId);
        var run = await PipelineTestEnvironment.WaitForRunAsync(host, runId, Timeout);

        Assert.Equal(RunStatus.Cancelled, run.Status);
        Assert.Equal(StageStatus.Cancelled, run.Stages.Single(s => s.Name == "search").Status);
        Assert.All(run.Stages.Where(s => s.Name.StartsWith("search-t", StringComparison.Ordinal)), s => Assert.Equal(StageStatus.Cancelled, s.Status));
        Assert.Equal(2, run.Stages.Count(s => s.Name.StartsWith("search-t", StringComparison.Ordinal)));
        Assert.Contains(run.Stages.Single(s => s.Name == "after").Status, new[] { StageStatus.Cancelled, StageStatus.Blocked });
        Assert.All(await TrialsAsync(env, runId), t => Assert.Equal(SearchTrialStatus.Cancelled, t.Status));
    }
}
