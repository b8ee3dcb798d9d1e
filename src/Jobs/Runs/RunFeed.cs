using Microsoft.Extensions.Logging;

namespace Pipeline.Jobs.Runs;

/// <summary>
/// One server-side feed per watched run, shared by every page that watches it: while anyone is subscribed it reads, every
/// <see cref="Interval"/>, the run's snapshot and the metric points and log lines after its cursor, and hands each
/// subscriber only what is new. Pages subscribe through the Blazor circuit; none of them polls the store itself. With
/// 50 viewers of one run the store still sees one reader.
/// </summary>
public sealed class RunFeed(RunQueries queries, ILogger<RunFeed> log)
{
    /// <summary>How often a watched run is read; the pages get their updates from here and never poll the store themselves.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    /// <summary>Points per metric and lines per stage in a subscriber's first update.</summary>
    public const int FirstPoints = 500, FirstLines = 300;

    private readonly Dictionary<long, Watch> _watches = [];
    private readonly Lock _gate = new();

    /// <summary>
    /// Calls <paramref name="onUpdate"/> with the run's first snapshot (its metric series downsampled, each stage's log tail)
    /// as soon as it is read, then with each change. Updates to one subscriber never overlap. Dispose the result to stop;
    /// the last subscriber's dispose ends the run's feed.
    /// </summary>
    public IDisposable Subscribe(long runId, Func<RunUpdate, Task> onUpdate)
    {
        var subscriber = new Subscriber(onUpdate);
        lock (_gate)
        {
            if (!_watches.TryGetValue(runId, out var watch))
            {
                watch = new Watch(runId);
                _watches[runId] = watch;
                watch.Loop = Task.Run(() => RunAsync(watch));
            }
            watch.Add(subscriber);
        }
        return new Unsubscriber(() => Leave(runId, subscriber));
    }

    /// <summary>Runs being watched now (for tests and diagnostics).</summary>
    public int WatchedRuns
    {
        get
        {
            lock (_gate) return _watches.Count;
        }
    }

    private void Leave(long runId, Subscriber subscriber)
    {
        lock (_gate)
        {
            if (!_watches.TryGetValue(runId, out var watch)) return;
            if (watch.Remove(subscriber) == 0)
            {
                _watches.Remove(runId);
                watch.Stop.Cancel();
            }
        }
    }

    private async Task RunAsync(Watch watch)
    {
        var ct = watch.Stop.Token;
        string? fingerprint = null;
        RunDetail? snapshot = null;
        (long Metric, long Log) cursor = default;
        var started = false;
        using var timer = new PeriodicTimer(Interval);
        do
        {
            try
            {
                if (!started)
                {
                    // Cursors first: a point stored between the two reads is then delivered twice rather than lost.
                    cursor = await queries.CursorsAsync(watch.RunId, ct);
                    started = true;
                }
                var run = await queries.GetAsync(watch.RunId, ct);
                var (metrics, logs) = await queries.AfterAsync(watch.RunId, cursor.Metric, cursor.Log, ct: ct);
                if (metrics.Count > 0) cursor.Metric = metrics[^1].Id;
                if (logs.Count > 0) cursor.Log = logs[^1].Id;
                var print = run is null ? "" : Fingerprint(run);
                var changed = print != fingerprint;
                (fingerprint, snapshot) = (print, run ?? snapshot);
                foreach (var s in watch.Subscribers())
                {
                    if (!s.Started)
                    {
                        s.Started = true;
                        await DeliverAsync(s, await FirstUpdateAsync(watch.RunId, run, ct));
                    }
                    else if (changed || metrics.Count > 0 || logs.Count > 0)
                    {
                        await DeliverAsync(s, new RunUpdate(watch.RunId, changed ? run : null, metrics, logs, IsFirst: false));
                    }
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                log.LogWarning("Live feed of run {RunId}: {Error}; trying again in {Interval}", watch.RunId, e.Message, Interval);
            }
        }
        while (await WaitAsync(timer, ct));
    }

    private static async Task<bool> WaitAsync(PeriodicTimer timer, CancellationToken ct)
    {
        try
        {
            return await timer.WaitForNextTickAsync(ct);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private async Task<RunUpdate> FirstUpdateAsync(long runId, RunDetail? run, CancellationToken ct)
    {
        var metrics = new List<MetricPointView>();
        var logs = new List<LogLineView>();
        foreach (var stage in run?.Stages ?? [])
        {
            foreach (var series in await queries.MetricSeriesAsync(stage.Id, FirstPoints, ct)) metrics.AddRange(series.Points);
            logs.AddRange(await queries.LogTailAsync(stage.Id, stage.Attempt, FirstLines, ct));
        }
        return new RunUpdate(runId, run, metrics, logs, IsFirst: true);
    }

    private async Task DeliverAsync(Subscriber s, RunUpdate update)
    {
        try
        {
            await s.OnUpdate(update);
        }
        catch (Exception e)
        {
            // A page that went away mid-update, or one that failed rendering: its problem, not the other viewers'.
            log.LogDebug(e, "A subscriber of run {RunId} failed to take an update", update.RunId);
        }
    }

    /// <summary>What a viewer sees change: states, attempts, progress, messages, summaries, artifacts, history (not heartbeats).</summary>
    private static string Fingerprint(RunDetail run) =>
        string.Join('|', run.Status, run.FinishedAt, string.Join(';', run.Stages.Select(s =>
            $"{s.Id},{s.Status},{s.Attempt},{s.Progress:R},{s.ProgressMessage},{s.Worker},{s.Error?.Length},{s.Summary?.ToJsonString().Length},{s.Artifacts.Count},{s.History.Count}")));

    private sealed class Subscriber(Func<RunUpdate, Task> onUpdate)
    {
        public Func<RunUpdate, Task> OnUpdate { get; } = onUpdate;
        public bool Started { get; set; }
    }

    private sealed class Watch(long runId)
    {
        private readonly List<Subscriber> _subscribers = [];
        public long RunId { get; } = runId;
        public CancellationTokenSource Stop { get; } = new();
        public Task? Loop { get; set; }

        public void Add(Subscriber s)
        {
            lock (_subscribers) _subscribers.Add(s);
        }

        public int Remove(Subscriber s)
        {
            lock (_subscribers)
            {
                _subscribers.Remove(s);
                return _subscribers.Count;
            }
        }

        public Subscriber[] Subscribers()
        {
            lock (_subscribers) return [.. _subscribers];
        }
    }

    private sealed class Unsubscriber(Action leave) : IDisposable
    {
        private int _done;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) == 0) leave();
        }
    }
}

/// <summary>
/// What changed in a run since the subscriber's last update. <c>Run</c> is the whole snapshot when a stage's state,
/// progress or summary changed, else null; <c>Metrics</c> and <c>Logs</c> hold only points and lines after the cursor
/// (the first update: the downsampled series and the log tail).
/// </summary>
public sealed record RunUpdate(long RunId, RunDetail? Run, IReadOnlyList<MetricPointView> Metrics, IReadOnlyList<LogLineView> Logs, bool IsFirst);

public sealed record MetricPointView(long Id, long StageId, string Name, long? Step, double Value, DateTime At);

/// <summary>A stored line of a stage attempt's log: level as Serilog names it (Information, Warning, …), the rendered message.</summary>
public sealed record LogLineView(long Id, long StageId, int Attempt, DateTime At, string Level, string Message);

/// <summary>A metric's points for a chart, at most the asked number, downsampled on the server (first, last, extremes kept).</summary>
public sealed record MetricSeries(long StageId, string Name, IReadOnlyList<MetricPointView> Points, int StoredPoints);
