using Pipeline.Jobs.RunStore;

namespace Pipeline.Jobs.Runs;

/// <summary>
/// One server-side feed per watched run, shared by every page that watches it: while anyone is subscribed it reads, every
/// <see cref="Interval"/>, the run's snapshot and the metric points and log lines after its cursor, and hands each
/// subscriber only what is new. Pages subscribe through the Blazor circuit; none of them polls the store itself.
/// </summary>
public sealed partial class RunFeed
{
    /// <summary>How often a watched, unfinished run is read: the floor is no faster than every 2 s per page.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Calls <paramref name="onUpdate"/> with the run's first snapshot (and its metrics and log tail) at once, then with each
    /// change. Dispose the result to stop; the last subscriber's dispose ends the run's feed.
    /// </summary>
    public IDisposable Subscribe(long runId, Func<RunUpdate, Task> onUpdate) => throw new NotImplementedException();
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
