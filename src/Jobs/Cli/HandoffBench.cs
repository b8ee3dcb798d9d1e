using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Pipeline.Jobs.Configuration;
using Pipeline.Jobs.Hosting;
using Pipeline.Jobs.RunStore;
using Pipeline.Jobs.Runs;

namespace Pipeline.Jobs.Cli;

/// <summary>
/// `pipeline bench handoff`: how long a stage's dependents wait after it ends. Fan-out/fan-in DAGs of probe stages run
/// on PostgreSQL in two separate `pipeline worker` processes (as on two VMs), alternately with Hangfire long polling (LISTEN/NOTIFY) and
/// with the queue poll alone, the reference; every parent → child gap (the child's start minus its last parent's end,
/// both from the run store) is collected per side, the first run of each worker process (warm-up) left out.
/// </summary>
public sealed class HandoffBench(int rounds, int runsPerWorker, int branches, double seconds, TextWriter output)
{
    public sealed record Side(string Name, bool LongPolling, List<double> GapsMs);

    public async Task<IReadOnlyList<Side>> RunAsync(CancellationToken ct)
    {
        using var host = PipelineHost.Build(worker: false, schedules: false);
        if (host.Services.GetRequiredService<PipelineMode>().EmbeddedDatabase)
            throw new InvalidOperationException("bench handoff measures the PostgreSQL job queue: set ConnectionStrings__Postgres (e.g. Host=…;Database=…;Username=…) and run it again.");
        await host.StartAsync(ct);
        var launcher = host.Services.GetRequiredService<RunLauncher>();
        var queries = host.Services.GetRequiredService<RunQueries>();
        Side[] sides = [new("long polling", true, []), new("queue poll only", false, [])];
        try
        {
            for (var round = 0; round < rounds; round++)
            {
                // Alternate the two sides, and which goes first, so that drifting load falls on both alike.
                foreach (var side in round % 2 == 0 ? sides : sides.Reverse())
                {
                    // Two worker processes, as two VMs: a child enqueued by the process where its parent ended is often
                    // taken by the other one, which only long polling (or the queue poll) wakes.
                    var workers = new[] { StartWorker(side, round, "a"), StartWorker(side, round, "b") };
                    try
                    {
                        for (var run = 0; run < runsPerWorker; run++)
                        {
                            var spec = FanOutFanIn($"{side.Name} {round}.{run} {Guid.NewGuid():N}");
                            var (runId, _) = await launcher.LaunchSpecAsync(spec, null, [], noCache: true, ct: ct);
                            var detail = await WaitAsync(queries, runId, workers, ct);
                            if (run > 0) side.GapsMs.AddRange(Gaps(detail));
                        }
                    }
                    finally
                    {
                        // Whatever happened, no bench worker outlives the bench (it would take the next side's jobs).
                        foreach (var w in workers)
                        {
                            if (!w.HasExited) w.Kill(entireProcessTree: true);
                            await w.WaitForExitAsync(CancellationToken.None);
                            w.Dispose();
                        }
                    }
                }
                output.WriteLine($"round {round + 1}/{rounds}: " +
                    string.Join("; ", sides.Select(s => FormattableString.Invariant($"{s.Name} median {Percentile(s.GapsMs, 0.5):F1} ms"))));
            }
        }
        finally
        {
            await host.StopAsync(CancellationToken.None);
        }
        return sides;
    }

    /// <summary>
    /// source → <c>branches</c> parallel probes → join. The notes make every run's stages new to the cache and every
    /// branch distinct from its siblings (equal stages would share a content key and wait for one another).
    /// </summary>
    private string FanOutFanIn(string note)
    {
        var s = seconds.ToString(CultureInfo.InvariantCulture);
        var parts = new List<string> { $$"""  "source": { "kind": "probe", "params": { "note": "{{note}}", "payload_bytes": 16 } }""" };
        parts.AddRange(Enumerable.Range(0, branches).Select(i =>
            $$"""  "b{{i}}": { "kind": "probe", "depends_on": ["source"], "params": { "seconds": {{s}}, "note": "{{note}} b{{i}}", "payload_bytes": 16 } }"""));
        parts.Add($$"""  "join": { "kind": "probe", "depends_on": [{{string.Join(", ", Enumerable.Range(0, branches).Select(i => $"\"b{i}\""))}}], "params": { "note": "{{note}}", "payload_bytes": 16 } }""");
        return $$"""{ "name": "bench-handoff", "stages": { {{string.Join(",\n", parts)}} } }""";
    }

    /// <summary>A `pipeline worker` with a job slot for every stage that can run at once, so no child waits for a free slot.</summary>
    private Process StartWorker(Side side, int round, string name)
    {
        var self = Environment.ProcessPath ?? "dotnet";
        var viaDotnet = Path.GetFileNameWithoutExtension(self) == "dotnet";
        var info = new ProcessStartInfo(self)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        if (viaDotnet) info.ArgumentList.Add(typeof(HandoffBench).Assembly.Location);
        foreach (var a in new[] { "worker", "--workers", (branches + 1).ToString(CultureInfo.InvariantCulture) }) info.ArgumentList.Add(a);
        info.Environment["Pipeline__HangfireLongPolling"] = side.LongPolling ? "true" : "false";
        info.Environment["Pipeline__WorkerName"] = $"bench-{(side.LongPolling ? "long" : "poll")}-{round}{name}";
        info.Environment["Pipeline__LogLevel"] = "Warning";
        var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start '{self} worker'");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static async Task<RunDetail> WaitAsync(RunQueries queries, long runId, IReadOnlyList<Process> workers, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
        while (DateTime.UtcNow < deadline)
        {
            if (workers.FirstOrDefault(w => w.HasExited) is { } dead)
                throw new InvalidOperationException($"a bench worker exited with code {dead.ExitCode}; run 'pipeline worker' by hand to see why.");
            if (await queries.GetAsync(runId, ct) is { IsFinished: true } run)
            {
                return run.Status == RunStatus.Succeeded ? run
                    : throw new InvalidOperationException($"bench run {runId} ended {run.Status}: {string.Join("; ", run.Stages.Where(s => s.Error is not null).Select(s => $"{s.Name}: {s.Error}"))}");
            }
            await Task.Delay(100, ct);
        }
        throw new TimeoutException($"bench run {runId} did not finish within 2 minutes; is the worker connected to the same database?");
    }

    /// <summary>For each stage with dependencies: its start (Queued → Running) minus its last parent's success.</summary>
    public static IEnumerable<double> Gaps(RunDetail run)
    {
        var byName = run.Stages.ToDictionary(s => s.Name);
        foreach (var child in run.Stages.Where(s => s.DependsOn.Count > 0))
        {
            var start = child.History.First(h => h.To == StageStatus.Running).At;
            var parentsDone = child.DependsOn.Max(d => byName[d].History.Last(h => h.To == StageStatus.Succeeded).At);
            yield return (start - parentsDone).TotalMilliseconds;
        }
    }

    /// <summary>The nearest-rank percentile (0.5: the median), NaN when there is no value.</summary>
    public static double Percentile(IReadOnlyCollection<double> values, double p)
    {
        if (values.Count == 0) return double.NaN;
        var sorted = values.Order().ToList();
        return sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Count) - 1, 0, sorted.Count - 1)];
    }
}
