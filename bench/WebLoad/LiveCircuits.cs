using System.Diagnostics;
using Microsoft.Playwright;
using Pipeline.Web.Harness;

namespace Pipeline.Bench.WebLoad;

/// <summary>What one Chromium page on the running run saw while the window lasted.</summary>
/// <param name="OpenMs">From navigating to the page until the circuit was interactive and the live chart drawn.</param>
/// <param name="Updates">Samples (one a second) at which the chart had more points than at the previous one.</param>
/// <param name="LongestStill">The longest time the chart did not grow.</param>
/// <param name="Errors">Console errors, page crashes and samples showing Blazor's reconnect dialog.</param>
public sealed record CircuitReport(double OpenMs, int Samples, int Updates, TimeSpan LongestStill, int Errors, IReadOnlyList<string> FirstErrors);

/// <summary>
/// Real Blazor circuits: headless Chromium pages, each in its own browser context, holding the running run's page open
/// with its live stage selected, so that the run's live feed (RunFeed) pushes every new metric point and log line to
/// each of them and its chart and log grow. Each page is sampled once a second while the window lasts.
/// </summary>
public sealed class LiveCircuits : IAsyncDisposable
{
    private const string Interactive = "[data-testid=nav][data-interactive=true]";
    private const string Chart = "[data-testid=metric-chart]";

    // [points on the chart (−1: no chart), 1 when Blazor's reconnect dialog shows].
    private const string SampleScript = """
        () => {
          const chart = document.querySelector('[data-testid=metric-chart]');
          const modal = document.getElementById('components-reconnect-modal');
          const lost = !!modal && (modal.open === true || /show|failed|rejected|retrying/.test(modal.className));
          return [chart ? Number(chart.dataset.points) : -1, lost ? 1 : 0];
        }
        """;

    private readonly IPlaywright _playwright;
    private readonly IBrowser _browser;
    private readonly List<Circuit> _circuits = [];

    private LiveCircuits(IPlaywright playwright, IBrowser browser)
    {
        _playwright = playwright;
        _browser = browser;
    }

    public static async Task<LiveCircuits> OpenAsync(Uri baseAddress, string path, int count)
    {
        var playwright = await Playwright.CreateAsync();
        var circuits = new LiveCircuits(playwright, await HeadlessChromium.LaunchAsync(playwright));
        try
        {
            // One after another: what is measured is a page opening on a loaded host, not a burst of browsers starting.
            for (var i = 0; i < count; i++) circuits._circuits.Add(await Circuit.OpenAsync(circuits._browser, baseAddress, path));
        }
        catch
        {
            await circuits.DisposeAsync();
            throw;
        }
        return circuits;
    }

    public int Count => _circuits.Count;

    /// <summary>Samples every page once a second for <paramref name="window"/>.</summary>
    public async Task<IReadOnlyList<CircuitReport>> WatchAsync(TimeSpan window, CancellationToken ct) =>
        await Task.WhenAll(_circuits.Select(c => c.WatchAsync(window, ct)));

    public async ValueTask DisposeAsync()
    {
        foreach (var c in _circuits) await c.Context.DisposeAsync();
        await _browser.DisposeAsync();
        _playwright.Dispose();
    }

    private sealed class Circuit(IBrowserContext context, IPage page, double openMs)
    {
        private readonly List<string> _errors = [];

        public IBrowserContext Context { get; } = context;

        public static async Task<Circuit> OpenAsync(IBrowser browser, Uri baseAddress, string path)
        {
            var context = await browser.NewContextAsync(new BrowserNewContextOptions { BaseURL = baseAddress.ToString() });
            context.SetDefaultTimeout(60_000);
            var page = await context.NewPageAsync();
            var began = Stopwatch.GetTimestamp();
            await page.GotoAsync(path);
            await page.Locator(Interactive).WaitForAsync();
            await page.Locator(Chart).First.WaitForAsync();
            var circuit = new Circuit(context, page, Stopwatch.GetElapsedTime(began).TotalMilliseconds);
            page.Console += (_, m) => { if (m.Type == "error") circuit.Error($"console: {m.Text}"); };
            page.Crash += (_, _) => circuit.Error("page crashed");
            return circuit;
        }

        private void Error(string message)
        {
            lock (_errors) _errors.Add(message);
        }

        public async Task<CircuitReport> WatchAsync(TimeSpan window, CancellationToken ct)
        {
            var began = Stopwatch.GetTimestamp();
            var (samples, updates, last) = (0, 0, -1);
            var grew = TimeSpan.Zero;
            var longestStill = TimeSpan.Zero;
            using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
            while (Stopwatch.GetElapsedTime(began) < window && await timer.WaitForNextTickAsync(ct))
            {
                var now = Stopwatch.GetElapsedTime(began);
                int[] sample;
                try
                {
                    sample = await page.EvaluateAsync<int[]>(SampleScript);
                }
                catch (PlaywrightException e)
                {
                    Error($"sample: {e.Message}");
                    continue;
                }
                samples++;
                if (sample[1] == 1) Error("Blazor's reconnect dialog showed");
                if (last >= 0 && sample[0] > last)
                {
                    updates++;
                    grew = now;
                }
                longestStill = Max(longestStill, now - grew);
                last = sample[0];
            }
            lock (_errors) return new CircuitReport(openMs, samples, updates, longestStill, _errors.Count, [.. _errors.Take(3)]);
        }

        private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;
    }
}
