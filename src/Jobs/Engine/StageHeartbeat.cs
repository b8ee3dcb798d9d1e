using Microsoft.EntityFrameworkCore;
using Pipeline.Jobs.RunStore;
using Pipeline.Stages.Execution;

namespace Pipeline.Jobs.Engine;

/// <summary>
/// The running stage's link to the run store. Progress and metrics are buffered in memory and written once per
/// heartbeat, so a stage may report as often as it likes while the store sees a bounded write rate. Each beat also
/// reads whether cancellation was requested.
/// </summary>
public sealed class StageHeartbeat(IDbContextFactory<RunStoreContext> dbs, long stageId, int attempt) : IStageProgress
{
    private readonly Lock _lock = new();
    private readonly List<MetricPoint> _metrics = [];
    private double _fraction;
    private string? _message;

    public void Report(double fraction, string? message = null)
    {
        lock (_lock)
        {
            _fraction = Math.Clamp(double.IsFinite(fraction) ? fraction : 0, 0, 1);
            if (message is not null) _message = StageEngine.Truncate(message, 500);
        }
    }

    public void Metric(string name, double value, long? step = null)
    {
        lock (_lock) _metrics.Add(new MetricPoint { StageId = stageId, Name = name, Value = value, Step = step, At = DateTime.UtcNow });
    }

    /// <summary>Writes heartbeat, progress and buffered metrics; returns false when the stage is no longer ours to run
    /// (re-queued after a lost heartbeat, or cancelled), true otherwise. <paramref name="cancelRequested"/> tells which.</summary>
    public async Task<(bool StillOurs, bool CancelRequested)> BeatAsync(CancellationToken ct)
    {
        double fraction;
        string? message;
        List<MetricPoint> metrics;
        lock (_lock)
        {
            (fraction, message) = (_fraction, _message);
            metrics = [.. _metrics];
            _metrics.Clear();
        }
        await using var db = await dbs.CreateDbContextAsync(ct);
        var rows = await db.Stages.Where(s => s.Id == stageId && s.Attempt == attempt && s.Status == StageStatus.Running)
            .ExecuteUpdateAsync(s => s.SetProperty(x => x.HeartbeatAt, DateTime.UtcNow).SetProperty(x => x.Progress, fraction)
                .SetProperty(x => x.ProgressMessage, message), ct);
        // A replaced attempt records nothing: its metrics are dropped with it.
        if (rows == 1 && metrics.Count > 0)
        {
            db.MetricPoints.AddRange(metrics);
            await db.SaveChangesAsync(ct);
        }
        var cancel = await db.Stages.Where(s => s.Id == stageId).Select(s => s.CancelRequested).SingleAsync(ct);
        return (rows == 1, cancel);
    }
}
