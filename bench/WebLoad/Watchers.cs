using System.Diagnostics;

namespace Pipeline.Bench.WebLoad;

/// <summary>One kind of request a watcher makes, and what its answer must contain to count as a success.</summary>
public sealed record WatchRequest(string Name, string Path, string MustContain);

/// <summary>
/// Clients watching a run, each in a loop on its own connection: a request, its whole answer read, a pause (the think
/// time, ±50 % so that clients do not move in step), then the next kind of request (each client starts at a different
/// one). Latency is measured in the client, from sending to the last byte read. Only requests sent after the warm-up
/// and before the window ends are counted; a request without an answer in 10 s is an error.
/// </summary>
public sealed class Watchers(Uri baseAddress, IReadOnlyList<WatchRequest> requests, int clients, TimeSpan think)
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    public async Task<IReadOnlyList<LatencySeries>> RunAsync(TimeSpan warmUp, TimeSpan window, CancellationToken ct)
    {
        var series = requests.Select(r => new LatencySeries(r.Name)).ToList();
        var start = Stopwatch.GetTimestamp();
        await Task.WhenAll(Enumerable.Range(0, clients).Select(i => Task.Run(() => ClientAsync(i, series, start, warmUp, warmUp + window, ct), ct)));
        return series;
    }

    private async Task ClientAsync(int client, List<LatencySeries> series, long start, TimeSpan from, TimeSpan until, CancellationToken ct)
    {
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 1 }) { BaseAddress = baseAddress, Timeout = Timeout };
        var random = new Random(client);
        for (var n = client; ; n++)
        {
            var sent = Stopwatch.GetElapsedTime(start);
            if (sent >= until) return;
            var kind = n % requests.Count;
            var began = Stopwatch.GetTimestamp();
            var problem = await RequestAsync(http, requests[kind], ct);
            var milliseconds = Stopwatch.GetElapsedTime(began).TotalMilliseconds;
            if (sent >= from)
            {
                if (problem is null) series[kind].Add(milliseconds);
                else series[kind].Fail(problem);
            }
            if (think > TimeSpan.Zero) await Task.Delay(think * (0.5 + random.NextDouble()), ct);
        }
    }

    /// <summary>Null when the answer is a success that shows what it must, else why not.</summary>
    private static async Task<string?> RequestAsync(HttpClient http, WatchRequest request, CancellationToken ct)
    {
        try
        {
            using var response = await http.GetAsync(request.Path, ct);
            var body = await response.Content.ReadAsStringAsync(ct);
            if (!response.IsSuccessStatusCode) return $"HTTP {(int)response.StatusCode}";
            return body.Contains(request.MustContain, StringComparison.Ordinal) ? null : $"answer without '{request.MustContain}'";
        }
        catch (HttpRequestException e)
        {
            return $"connection: {e.HttpRequestError}";
        }
        catch (TaskCanceledException) when (!ct.IsCancellationRequested)
        {
            return $"no answer within {Timeout.TotalSeconds:0} s";
        }
    }
}
