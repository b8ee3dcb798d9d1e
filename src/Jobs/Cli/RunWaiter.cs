using Pipeline.Jobs.Engine;
using Pipeline.Jobs.RunStore;
using Pipeline.Jobs.Runs;

namespace Pipeline.Jobs.Cli;

/// <summary>Follows a run until it ends, printing a line whenever a stage's state or progress visibly changes, then its results.</summary>
public static class RunWaiter
{
    public static async Task<RunDetail> WaitAsync(RunQueries queries, long runId, bool quiet, CancellationToken ct)
    {
        var shown = new Dictionary<long, string>();
        while (true)
        {
            var run = await queries.GetAsync(runId, ct) ?? throw new EngineException($"Run {runId} disappeared.");
            if (!quiet)
            {
                foreach (var s in run.Stages)
                {
                    var pct = (int)Math.Floor(s.Progress * 20) * 5;
                    var line = s.Status == StageStatus.Running
                        ? $"{s.Name}: running {pct}%{(s.ProgressMessage is null ? "" : $"  {s.ProgressMessage}")}"
                        : $"{s.Name}: {s.Status.ToString().ToLowerInvariant()}{(s.Error is null ? "" : $"  ({s.Error})")}";
                    if (shown.GetValueOrDefault(s.Id) == line) continue;
                    shown[s.Id] = line;
                    Console.WriteLine($"[{DateTime.Now:HH:mm:ss}] {line}");
                }
            }
            if (run.IsFinished) return run;
            await Task.Delay(TimeSpan.FromMilliseconds(500), ct);
        }
    }

    /// <summary>The end of a followed run: each stage's headline figures and the local files to open (see <see cref="RunResults"/>).</summary>
    public static async Task PrintResultsAsync(RunResults results, RunDetail run, CancellationToken ct) =>
        CliOutput.PrintResults(await results.CollectAsync(run, ct));
}
