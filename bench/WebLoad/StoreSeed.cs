using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Pipeline.Bench.WebLoad;

/// <summary>
/// Fills the host's run store through its own API (POST /api/runs: the host's RunLauncher, as the Launch page, the CLI
/// and schedules launch runs). First the run the clients watch: presets/probe-dag.json with its <c>source</c> stage
/// reporting ten steps a second (a metric point and a log line each) for as long as the bench lasts; it occupies the
/// host's one worker slot. Then the other runs: probe-dag launched and cancelled at once, before the busy worker could
/// take them (the cancel deletes their jobs), so that the store holds that many runs without 2,000 stages to execute
/// first. Executing them took more than 5 minutes here.
/// </summary>
public sealed partial class StoreSeed(HttpClient http)
{
    public const string Preset = "probe-dag";
    public const string LiveStage = "source";
    public const int StepsPerSecond = 10;

    public async Task<long> LaunchWatchedRunAsync(TimeSpan lasting, CancellationToken ct)
    {
        var seconds = (int)Math.Ceiling(lasting.TotalSeconds);
        return await LaunchAsync(
            [$"stages.{LiveStage}.params.seconds={seconds}", $"stages.{LiveStage}.params.steps={seconds * StepsPerSecond}", $"stages.{LiveStage}.params.note=watched by bench/web.sh"], ct);
    }

    /// <summary>Waits until the watched run's live stage is running (the worker has taken it).</summary>
    public async Task UntilRunningAsync(long runId, TimeSpan timeout, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + timeout;
        string? status = null;
        while (DateTime.UtcNow < deadline)
        {
            var run = await http.GetFromJsonAsync<JsonObject>($"api/runs/{runId}", ct);
            status = run?["stages"]?.AsArray().FirstOrDefault(s => (string?)s?["name"] == LiveStage)?["status"]?.GetValue<string>();
            if (status == "running") return;
            if (status is "succeeded" or "failed" or "cancelled" or "cached") break;
            await Task.Delay(200, ct);
        }
        throw new InvalidOperationException($"the watched run {runId}'s stage '{LiveStage}' is {status ?? "unknown"}, not running, after {timeout.TotalSeconds:0} s");
    }

    /// <summary>Launches and cancels <paramref name="runs"/> probe-dag runs, <paramref name="parallel"/> at a time.</summary>
    public async Task FillAsync(int runs, int parallel, CancellationToken ct) =>
        await Parallel.ForEachAsync(Enumerable.Range(0, runs), new ParallelOptions { MaxDegreeOfParallelism = parallel, CancellationToken = ct }, async (_, token) =>
        {
            var id = await LaunchAsync([], token);
            using var cancelled = await http.PostAsync($"api/runs/{id}/cancel", null, token);
            if (cancelled.StatusCode != HttpStatusCode.Accepted) throw new InvalidOperationException($"cancelling run {id} answered {(int)cancelled.StatusCode}: {await cancelled.Content.ReadAsStringAsync(token)}");
        });

    /// <summary>How many runs the store holds, as /healthz reports it.</summary>
    public async Task<int> CountAsync(CancellationToken ct)
    {
        var health = await http.GetStringAsync("healthz", ct);
        var match = RunCount().Match(health);
        return match.Success ? int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) : throw new InvalidOperationException($"/healthz does not say how many runs the store holds: {health}");
    }

    /// <summary>Cancels the watched run at the end (the host and its database go anyway; this keeps its log quiet).</summary>
    public async Task CancelAsync(long runId, CancellationToken ct)
    {
        using var _ = await http.PostAsync($"api/runs/{runId}/cancel", null, ct);
    }

    private async Task<long> LaunchAsync(string[] set, CancellationToken ct)
    {
        using var response = await http.PostAsJsonAsync("api/runs", new { preset = Preset, set }, ct);
        var body = await response.Content.ReadAsStringAsync(ct);
        if (response.StatusCode != HttpStatusCode.Created) throw new InvalidOperationException($"POST /api/runs answered {(int)response.StatusCode}: {body}");
        return JsonNode.Parse(body)!["id"]!.GetValue<long>();
    }

    [GeneratedRegex(@"(\d+) runs")]
    private static partial Regex RunCount();
}
