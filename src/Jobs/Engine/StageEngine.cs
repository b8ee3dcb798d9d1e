using Hangfire;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Query;
using Microsoft.Extensions.Logging;
using Pipeline.Jobs.RunSpecs;
using Pipeline.Jobs.RunStore;

namespace Pipeline.Jobs.Engine;

/// <summary>
/// Decides what runs next. The run store is the source of truth and Hangfire only carries jobs: a stage becomes
/// Queued through a conditional update that succeeds for exactly one caller, and only that caller enqueues its job
/// (DESIGN.md "Exactly once, simply"). Every state change goes through <see cref="TryTransitionAsync"/>, which
/// also records the transition with its reason.
/// </summary>
public sealed class StageEngine(IDbContextFactory<RunStoreContext> dbs, IBackgroundJobClient jobs, ILogger<StageEngine> log)
{
    public async Task<long> LaunchAsync(RunSpec spec, IReadOnlyList<PlannedStage> plan, string specJson, string? preset = null,
        bool noCache = false, long? scheduleId = null, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var now = DateTime.UtcNow;
        var run = new Run { Name = spec.Name, Preset = preset, SpecJson = specJson, NoCache = noCache, ScheduleId = scheduleId, CreatedAt = now };
        var byName = new Dictionary<string, Stage>();
        foreach (var p in plan)
        {
            var stage = new Stage
            {
                Name = p.Name,
                Kind = p.Kind.Kind,
                Queue = p.Kind.Queue,
                ParamsJson = p.CanonicalParams,
                CreatedAt = now,
                History = [new StageTransition { To = StageStatus.Pending, At = now, Attempt = 1, Reason = "run created" }],
            };
            stage.DependsOn = [.. p.DependsOn.Select(d => new StageDependency { DependsOnStage = byName[d] })];
            byName[p.Name] = stage;
            run.Stages.Add(stage);
        }
        db.Runs.Add(run);
        await db.SaveChangesAsync(ct);
        log.LogInformation("Run {RunId} '{RunName}' created with {StageCount} stages", run.Id, run.Name, plan.Count);
        await PromoteReadyAsync(run.Id, ct);
        return run.Id;
    }

    /// <summary>Queues every Pending stage of the run whose dependencies have all succeeded, each exactly once.</summary>
    public async Task<int> PromoteReadyAsync(long runId, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var candidates = await ReadyStages(db).Where(s => s.RunId == runId).Select(s => new { s.Id, s.Attempt }).ToListAsync(ct);
        var promoted = 0;
        foreach (var c in candidates)
        {
            // The readiness condition is repeated inside the UPDATE: of several workers finishing a fan-in's parents
            // at once, only the one whose statement sees all parents done (and the stage still Pending) wins.
            var won = await TryTransitionAsync(db, c.Id, c.Attempt, StageStatus.Pending, StageStatus.Queued, "dependencies succeeded",
                s => s.SetProperty(x => x.QueuedAt, DateTime.UtcNow).SetProperty(x => x.JobId, (string?)null),
                extraCondition: q => q.Where(s => s.DependsOn.All(d => d.DependsOnStage!.Status == StageStatus.Succeeded || d.DependsOnStage!.Status == StageStatus.Cached)),
                ct: ct);
            if (!won) continue;
            await EnqueueAsync(c.Id, ct);
            promoted++;
        }
        await RefreshRunStatusAsync(runId, ct);
        return promoted;
    }

    /// <summary>Creates the Hangfire job of a Queued stage and records its id (also used by the reconciler for lost jobs).</summary>
    public async Task EnqueueAsync(long stageId, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var stage = await db.Stages.AsNoTracking().SingleAsync(s => s.Id == stageId, ct);
        if (stage.Status != StageStatus.Queued) return;
        var jobId = jobs.Enqueue<StageJob>(stage.Queue, j => j.RunAsync(stage.Id, stage.Attempt, CancellationToken.None));
        await db.Stages.Where(s => s.Id == stageId && s.Attempt == stage.Attempt && s.Status == StageStatus.Queued)
            .ExecuteUpdateAsync(s => s.SetProperty(x => x.JobId, jobId), ct);
        log.LogInformation("Stage {StageId} ({StageName}, attempt {Attempt}) enqueued on '{Queue}' as job {JobId}", stage.Id, stage.Name, stage.Attempt, stage.Queue, jobId);
    }

    /// <summary>Retries a Failed or Cancelled stage (a new attempt) and unblocks its dependents; the DAG resumes.</summary>
    public async Task RetryAsync(long stageId, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var stage = await db.Stages.AsNoTracking().SingleOrDefaultAsync(s => s.Id == stageId, ct)
            ?? throw new EngineException($"Stage {stageId} does not exist.");
        if (stage.Status is not (StageStatus.Failed or StageStatus.Cancelled))
        {
            throw new EngineException($"Stage {stageId} ({stage.Name}) is {stage.Status}; only Failed or Cancelled stages can be retried.");
        }
        await TryTransitionAsync(db, stageId, stage.Attempt, stage.Status, StageStatus.Pending, "retry requested",
            s => s.SetProperty(x => x.Attempt, x => x.Attempt + 1).SetProperty(x => x.Error, (string?)null)
                  .SetProperty(x => x.CancelRequested, false).SetProperty(x => x.Progress, 0).SetProperty(x => x.FinishedAt, (DateTime?)null), ct: ct);
        foreach (var d in await DependentsAsync(db, stageId, ct))
        {
            foreach (var from in new[] { StageStatus.Blocked, StageStatus.Cancelled })
            {
                await TryTransitionAsync(db, d.Id, d.Attempt, from, StageStatus.Pending, $"dependency '{stage.Name}' retried",
                    s => s.SetProperty(x => x.CancelRequested, false).SetProperty(x => x.FinishedAt, (DateTime?)null), ct: ct);
            }
        }
        await PromoteReadyAsync(stage.RunId, ct);
    }

    /// <summary>Retries every Failed or Cancelled stage of a run.</summary>
    public async Task RetryRunAsync(long runId, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        if (!await db.Runs.AnyAsync(r => r.Id == runId, ct)) throw new EngineException($"Run {runId} does not exist.");
        var ids = await db.Stages.Where(s => s.RunId == runId && (s.Status == StageStatus.Failed || s.Status == StageStatus.Cancelled))
            .OrderBy(s => s.Id).Select(s => s.Id).ToListAsync(ct);
        if (ids.Count == 0) throw new EngineException($"Run {runId} has no Failed or Cancelled stage to retry.");
        foreach (var id in ids)
        {
            var status = await db.Stages.Where(s => s.Id == id).Select(s => s.Status).SingleAsync(ct);
            if (status is StageStatus.Failed or StageStatus.Cancelled) await RetryAsync(id, ct);
        }
    }

    /// <summary>
    /// Cancels a stage: a waiting one ends Cancelled at once; a running one gets its cancellation token fired (the
    /// worker sees the request within one heartbeat) and ends Cancelled when it stops. Dependents are blocked.
    /// </summary>
    public async Task CancelAsync(long stageId, string reason = "cancel requested", CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var stage = await db.Stages.AsNoTracking().SingleOrDefaultAsync(s => s.Id == stageId, ct)
            ?? throw new EngineException($"Stage {stageId} does not exist.");
        if (StageStatuses.IsTerminal(stage.Status)) return;
        if (stage.Status == StageStatus.Running)
        {
            await db.Stages.Where(s => s.Id == stageId && s.Status == StageStatus.Running)
                .ExecuteUpdateAsync(s => s.SetProperty(x => x.CancelRequested, true), ct);
            if (stage.JobId is not null) jobs.Delete(stage.JobId);
            log.LogInformation("Cancellation requested for running stage {StageId} ({StageName})", stage.Id, stage.Name);
            return;
        }
        if (await TryTransitionAsync(db, stageId, stage.Attempt, stage.Status, StageStatus.Cancelled, reason,
                s => s.SetProperty(x => x.FinishedAt, DateTime.UtcNow), ct: ct))
        {
            if (stage.JobId is not null) jobs.Delete(stage.JobId);
            await BlockDependentsAsync(stageId, $"dependency '{stage.Name}' was cancelled", ct);
        }
        await RefreshRunStatusAsync(stage.RunId, ct);
    }

    public async Task CancelRunAsync(long runId, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var ids = await db.Stages.Where(s => s.RunId == runId).OrderByDescending(s => s.Id).Select(s => s.Id).ToListAsync(ct);
        if (ids.Count == 0) throw new EngineException($"Run {runId} does not exist.");
        foreach (var id in ids) await CancelAsync(id, "run cancelled", ct);
    }

    /// <summary>Marks every transitive dependent still waiting as Blocked.</summary>
    public async Task BlockDependentsAsync(long stageId, string reason, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        foreach (var d in await DependentsAsync(db, stageId, ct))
        {
            await TryTransitionAsync(db, d.Id, d.Attempt, StageStatus.Pending, StageStatus.Blocked, reason, ct: ct);
        }
    }

    /// <summary>Derives the run's status from its stages and records it (and the finish time when it ends).</summary>
    public async Task RefreshRunStatusAsync(long runId, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var statuses = await db.Stages.Where(s => s.RunId == runId).Select(s => s.Status).ToListAsync(ct);
        var status = statuses switch
        {
            _ when statuses.All(StageStatuses.IsDone) => RunStatus.Succeeded,
            _ when statuses.Any(s => s is StageStatus.Queued or StageStatus.Running) => RunStatus.Running,
            _ when statuses.Any(s => s is StageStatus.Pending) && statuses.Any(s => s is not StageStatus.Pending) => RunStatus.Running,
            _ when statuses.All(s => s is StageStatus.Pending) => RunStatus.Pending,
            _ when statuses.Any(s => s is StageStatus.Failed) => RunStatus.Failed,
            _ when statuses.Any(s => s is StageStatus.Cancelled) => RunStatus.Cancelled,
            _ => RunStatus.Failed,
        };
        var finished = status is RunStatus.Succeeded or RunStatus.Failed or RunStatus.Cancelled ? DateTime.UtcNow : (DateTime?)null;
        await db.Runs.Where(r => r.Id == runId && r.Status != status)
            .ExecuteUpdateAsync(s => s.SetProperty(r => r.Status, status).SetProperty(r => r.FinishedAt, finished), ct);
    }

    /// <summary>
    /// Moves a stage from <paramref name="from"/> to <paramref name="to"/> only if it is still in that state at that
    /// attempt (and <paramref name="extraCondition"/> holds), then records the transition. Returns whether it won.
    /// </summary>
    public static async Task<bool> TryTransitionAsync(RunStoreContext db, long stageId, int attempt, StageStatus from, StageStatus to, string reason,
        Action<UpdateSettersBuilder<Stage>>? also = null, Func<IQueryable<Stage>, IQueryable<Stage>>? extraCondition = null, CancellationToken ct = default)
    {
        var query = db.Stages.Where(s => s.Id == stageId && s.Attempt == attempt && s.Status == from);
        if (extraCondition is not null) query = extraCondition(query);
        var rows = await query.ExecuteUpdateAsync(s =>
        {
            s.SetProperty(x => x.Status, to);
            also?.Invoke(s);
        }, ct);
        if (rows == 0) return false;
        var newAttempt = await db.Stages.Where(s => s.Id == stageId).Select(s => s.Attempt).SingleAsync(ct);
        db.StageTransitions.Add(new StageTransition { StageId = stageId, Attempt = newAttempt, From = from, To = to, At = DateTime.UtcNow, Reason = Truncate(reason, 2000) });
        await db.SaveChangesAsync(ct);
        db.ChangeTracker.Clear();
        return true;
    }

    internal static IQueryable<Stage> ReadyStages(RunStoreContext db) =>
        db.Stages.Where(s => s.Status == StageStatus.Pending &&
            s.DependsOn.All(d => d.DependsOnStage!.Status == StageStatus.Succeeded || d.DependsOnStage!.Status == StageStatus.Cached));

    private static async Task<List<Stage>> DependentsAsync(RunStoreContext db, long stageId, CancellationToken ct)
    {
        var runId = await db.Stages.Where(s => s.Id == stageId).Select(s => s.RunId).SingleAsync(ct);
        var edges = await db.StageDependencies.Where(d => db.Stages.Any(s => s.Id == d.StageId && s.RunId == runId)).AsNoTracking().ToListAsync(ct);
        var found = new HashSet<long>();
        var frontier = new Queue<long>([stageId]);
        while (frontier.TryDequeue(out var id))
        {
            foreach (var e in edges.Where(e => e.DependsOnStageId == id))
            {
                if (found.Add(e.StageId)) frontier.Enqueue(e.StageId);
            }
        }
        return await db.Stages.AsNoTracking().Where(s => found.Contains(s.Id)).OrderBy(s => s.Id).ToListAsync(ct);
    }

    internal static string Truncate(string s, int max) => s.Length <= max ? s : s[..max];
}

/// <summary>A request to the engine that cannot be carried out (unknown id, wrong state); the message says why.</summary>
public sealed class EngineException(string message) : Exception(message);
