using System.Diagnostics;
using Pipeline.Web.Harness;

namespace Pipeline.Bench.WebLoad;

public sealed record WebLoadOptions(int Clients, int Runs, TimeSpan WarmUp, TimeSpan Duration, TimeSpan Think, int Circuits);

/// <summary>
/// The dashboard under load (issue 13, requirement 7): the real web host as a process on PostgreSQL and Azurite, a store of
/// <see cref="WebLoadOptions.Runs"/> runs (<see cref="StoreSeed"/>), one of them running and reporting; then
/// <see cref="WebLoadOptions.Clients"/> HTTP clients watching it (<see cref="Watchers"/>) while a few Chromium pages hold
/// Blazor circuits on its page (<see cref="LiveCircuits"/>). Prints the client-side latencies per kind of request.
/// </summary>
public static class WebLoadBench
{
    /// <summary>The target: the 95th percentile of every request within this.</summary>
    public const double TargetP95Ms = 200;

    public static async Task<int> RunAsync(WebLoadOptions o, TextWriter output, CancellationToken ct)
    {
        output.WriteLine($"machine: {Machine.Describe()}; load average {Machine.LoadAverage()}");
        await using var host = await WebHostProcess.StartAsync([], settings: new Dictionary<string, string>
        {
            // One worker slot, as the host has by default: the watched run's stage holds it (see StoreSeed).
            ["Pipeline__WorkerCount"] = "1",
            // Heartbeat at the live feed's interval (default 5 s) so that the feed has new points for the pages every
            // second: the live pages' worst case. The reconciler at its default (the harness sets 1 s for tests).
            ["Pipeline__HeartbeatInterval"] = "00:00:01",
            ["Pipeline__ReconcileInterval"] = "00:00:15",
        }, databasePrefix: "benchweb");
        using var http = new HttpClient { BaseAddress = host.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        var seed = new StoreSeed(http);

        var seeding = Stopwatch.StartNew();
        // Long enough for the seeding (≈ 0.1 s a run here), the pages opening, the warm-up and the window, with room to spare.
        var runId = await seed.LaunchWatchedRunAsync(TimeSpan.FromMinutes(10) + o.WarmUp + o.Duration, ct);
        await seed.UntilRunningAsync(runId, TimeSpan.FromSeconds(60), ct);
        await seed.FillAsync(o.Runs - 1, parallel: 4, ct);
        var stored = await seed.CountAsync(ct);
        output.WriteLine($"store: {stored} runs in {seeding.Elapsed.TotalSeconds:F1} s: run {runId} ({StoreSeed.Preset}, stage '{StoreSeed.LiveStage}' running, " +
                         $"{StoreSeed.StepsPerSecond} steps a second with a metric point and a log line each) and {o.Runs - 1} {StoreSeed.Preset} runs launched and cancelled");

        var opening = Stopwatch.StartNew();
        await using var circuits = o.Circuits > 0 ? await LiveCircuits.OpenAsync(host.BaseAddress, $"runs/{runId}?stage={StoreSeed.LiveStage}", o.Circuits) : null;
        if (circuits is not null) output.WriteLine($"circuits: {circuits.Count} Chromium pages on /runs/{runId}?stage={StoreSeed.LiveStage} opened in {opening.Elapsed.TotalSeconds:F1} s");

        WatchRequest[] requests =
        [
            new("GET /api/runs", "api/runs", "\"id\":"),
            new("GET /api/runs/{id}", $"api/runs/{runId}", $"\"id\":{runId},"),
            // The Run page as the server prerenders it: the run's title must be in the HTML.
            new("GET /runs/{id}", $"runs/{runId}", $"#{runId} {StoreSeed.Preset}"),
        ];
        output.WriteLine($"load: {o.Clients} clients on {host.BaseAddress}, each cycling through {string.Join(", ", requests.Select(r => r.Name))} " +
                         $"with {o.Think.TotalMilliseconds:0} ms think time (±50 %); {o.WarmUp.TotalSeconds:0} s warm-up, then {o.Duration.TotalSeconds:0} s measured");
        var load = new Watchers(host.BaseAddress, requests, o.Clients, o.Think).RunAsync(o.WarmUp, o.Duration, ct);
        await Task.Delay(o.WarmUp, ct);
        var cpuBefore = Machine.CpuTime(host.ProcessId);
        var clientCpuBefore = Machine.CpuTime(Environment.ProcessId);
        var measuring = Stopwatch.StartNew();
        var watching = circuits?.WatchAsync(o.Duration, ct) ?? Task.FromResult<IReadOnlyList<CircuitReport>>([]);
        var series = await load;
        var pages = await watching;
        var cpu = Machine.CpuTime(host.ProcessId) - cpuBefore;
        var clientCpu = Machine.CpuTime(Environment.ProcessId) - clientCpuBefore;
        var wall = measuring.Elapsed;

        var rows = series.Select(s => s.Summarize(o.Duration)).Append(LatencySeries.Combine("all requests", series, o.Duration)).ToList();
        output.WriteLine($"{"request",-20} {"count",7} {"errors",6} {"req/s",6} {"p50 ms",7} {"p95 ms",7} {"p99 ms",7} {"max ms",7}");
        foreach (var r in rows)
        {
            output.WriteLine($"{r.Name,-20} {r.Count,7} {r.Errors,6} {Figures.Significant(r.PerSecond),6} {Figures.Significant(r.P50),7} {Figures.Significant(r.P95),7} " +
                             $"{Figures.Significant(r.P99),7} {Figures.Significant(r.Max),7}");
        }
        foreach (var (reason, n) in rows[^1].ErrorReasons) output.WriteLine($"  error: {n} × {reason}");
        if (pages.Count > 0)
        {
            var opened = pages.Select(p => p.OpenMs).Order().ToList();
            output.WriteLine($"circuits: {pages.Count} pages, opened (until interactive with the chart drawn) in p50 {Figures.Significant(Percentiles.NearestRank(opened, 0.5))} ms, " +
                             $"max {Figures.Significant(opened[^1])} ms; the chart grew at {pages.Min(p => p.Updates)}–{pages.Max(p => p.Updates)} of " +
                             $"{pages.Max(p => p.Samples)} one-second samples, never still longer than {Figures.Significant(pages.Max(p => p.LongestStill.TotalSeconds))} s; " +
                             $"errors {pages.Sum(p => p.Errors)}");
            foreach (var e in pages.SelectMany(p => p.FirstErrors).Distinct().Take(5)) output.WriteLine($"  circuit error: {e}");
        }
        output.WriteLine($"CPU in {Figures.Significant(wall.TotalSeconds)} s: web host {Figures.Significant(cpu.TotalSeconds)} s " +
                         $"({Figures.Significant(1000 * cpu.TotalSeconds / Math.Max(1, rows[^1].Count + rows[^1].Errors))} ms a request, live feed and circuits included), " +
                         $"the clients' process {Figures.Significant(clientCpu.TotalSeconds)} s (Chromium not counted); load average at the end {Machine.LoadAverage()}");
        var all = rows[^1];
        var worst = rows.Take(rows.Count - 1).MaxBy(r => r.P95)!;
        output.WriteLine($"target p95 < {TargetP95Ms:0} ms: {(all.P95 < TargetP95Ms && worst.P95 < TargetP95Ms ? "met" : "missed")} " +
                         $"(all requests {Figures.Significant(all.P95)} ms; slowest kind {worst.Name} {Figures.Significant(worst.P95)} ms)");

        await seed.CancelAsync(runId, ct);
        return all.Errors + pages.Sum(p => p.Errors) > 0 ? 1 : 0;
    }
}
