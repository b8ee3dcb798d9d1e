using Hangfire;
using Hangfire.States;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Pipeline.Jobs.RunStore;
using Pipeline.Jobs.Configuration;

namespace Pipeline.Jobs.Engine;

/// <summary>
/// Repairs what a crash can leave behind, in every worker process on a timer: running stages whose heartbeat stopped
/// (killed worker, lost VM) get a new attempt; queued stages whose Hangfire job is gone (in-memory storage after a
/// restart, a job deleted by hand) get a new job; pending stages whose dependencies are done (a crash between recording
/// a success and promoting) get queued; running searches record trials that ended and propose the next. Each repair is a conditional update, so several reconcilers never double it.
/// </summary>
public sealed class Reconciler(
    IDbContextFactory<RunStoreContext> dbs,
    StageEngine engine,
    JobStorage storage,
    IOptions<PipelineOptions> options,
    ILogger<Reconciler> log) : PeriodicPass(log)
{
    protected override TimeSpan Interval => options.Value.ReconcileInterval;

    protected override string PassName => "Reconciliation pass";

    protected override Task PassAsync(CancellationToken ct) => ReconcileOnceAsync(ct);

    /// <summary>One pass; returns how many stages it repaired.</summary>
    public async Task<int> ReconcileOnceAsync(CancellationToken ct)
    {
        var repaired = 0;
        var now = DateTime.UtcNow;
        await using var db = await dbs.CreateDbContextAsync(ct);

        var staleBefore = now - options.Value.HeartbeatTimeout;
        var stale = await db.Stages.AsNoTracking().Where(s => s.Status == StageStatus.Running && s.HeartbeatAt < staleBefore).ToListAsync(ct);
        foreach (var s in stale)
        {
            if (await engine.RecoverLostAsync(db, s, ct: ct)) repaired++;
        }

        var graceBefore = now - options.Value.ReconcileInterval;
        var queued = await db.Stages.AsNoTracking().Where(s => s.Status == StageStatus.Queued)
            .Select(s => new { s.Id, s.JobId, s.QueuedAt }).ToListAsync(ct);
        foreach (var s in queued)
        {
            if (s.JobId is null ? s.QueuedAt >= graceBefore : JobIsAlive(s.JobId)) continue;
            var rows = await db.Stages.Where(x => x.Id == s.Id && x.Status == StageStatus.Queued && x.JobId == s.JobId)
                .ExecuteUpdateAsync(x => x.SetProperty(y => y.JobId, "reconciling"), ct);
            if (rows == 0) continue;
            Log.LogWarning("Stage {StageId} was queued but its job {JobId} is gone; enqueuing it again", s.Id, s.JobId ?? "(none)");
            await db.Stages.Where(x => x.Id == s.Id).ExecuteUpdateAsync(x => x.SetProperty(y => y.JobId, (string?)null), ct);
            await engine.EnqueueAsync(s.Id, ct);
            repaired++;
        }

        var runs = await StageEngine.ReadyStages(db).Select(s => s.RunId).Distinct().ToListAsync(ct);
        foreach (var runId in runs) repaired += await engine.PromoteReadyAsync(runId, ct);
        // A search whose trial ended just before a crash records it and proposes the next here.
        repaired += await engine.Searches.AdvanceAllAsync(ct);
        // A run whose last stage ended in a process that died before recording the run's status.
        var unfinished = await db.Runs.Where(r => r.Status == RunStatus.Running || r.Status == RunStatus.Pending)
            .Where(r => !db.Stages.Any(s => s.RunId == r.Id && s.TrialId == null && (s.Status == StageStatus.Queued || s.Status == StageStatus.Running || s.Status == StageStatus.Pending)))
            .Select(r => r.Id).ToListAsync(ct);
        foreach (var runId in unfinished) await engine.RefreshRunStatusAsync(runId, ct);
        return repaired;
    }

    private bool JobIsAlive(string jobId)
    {
        if (jobId == "reconciling") return false;
        using var connection = storage.GetConnection();
        var job = connection.GetJobData(jobId);
        return job is not null && job.State != DeletedState.StateName && job.State != SucceededState.StateName && job.State != FailedState.StateName;
    }
}
