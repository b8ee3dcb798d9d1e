using Hangfire;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Query;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Pipeline.Jobs.RunSpecs;
using Pipeline.Jobs.RunStore;
using Pipeline.Jobs.Search;
using Pipeline.Stages.Artifacts;
using Pipeline.Jobs.Configuration;

namespace Pipeline.Jobs.Engine;

/// <summary>
/// Decides what runs next. The run store is the source of truth and Hangfire only carries jobs: a stage becomes
/// Queued through a conditional update that succeeds for exactly one caller, and only that caller enqueues its job
/// (DESIGN.md "Exactly once, simply"). Every state change goes through <see cref="TryTransitionAsync"/>, which
/// also records the transition with its reason.
/// </summary>
public sealed class StageEngine(
    IDbContextFactory<RunStoreContext> dbs, IBackgroundJobClient jobs, IArtifactStore store, IOptions<PipelineOptions> options, PipelineMode mode,
    ILogger<StageEngine> log)
{
    /// <summary>How often one stage may have the producer of a corrupt input re-run before it fails instead.</summary>
    public const int MaxHealsPerStage = 2;

    private const string CorruptInputReason = "found its input corrupt";

    private SearchCoordinator? _searches;

    /// <summary>Runs the run's <c>search</c> stages, which have no job of their own.</summary>
    public SearchCoordinator Searches => _searches ??= new SearchCoordinator(dbs, store, this, log);

    public async Task<long> LaunchAsync(RunSpec spec, IReadOnlyList<PlannedStage> plan, string specJson, string? preset = null,
        bool noCache = false, long? scheduleId = null, IReadOnlyList<string>? overrides = null, IReadOnlySet<string>? fresh = null, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var now = DateTime.UtcNow;
        var run = new Run
        {
            Name = spec.Name,
            Preset = preset,
            SpecJson = specJson,
            OverridesJson = overrides is { Count: > 0 } ? System.Text.Json.JsonSerializer.Serialize(overrides) : null,
            NoCache = noCache,
            ScheduleId = scheduleId,
            CreatedAt = now,
        };
        var byName = new Dictionary<string, Stage>();
        foreach (var p in plan)
        {
            var stage = new Stage
            {
                Name = p.Name,
                Kind = p.Kind.Kind,
                Queue = p.Kind.Queue,
                ParamsJson = p.CanonicalParams,
                NoCache = fresh?.Contains(p.Name) ?? false,
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
        var candidates = await ReadyStages(db).Where(s => s.RunId == runId).Select(s => new { s.Id, s.Attempt, s.Kind }).ToListAsync(ct);
        var queued = new List<long>();
        var started = 0;
        foreach (var c in candidates)
        {
            // A search runs in the engine, not in a job: it goes straight to Running and proposes its first trials.
            var search = c.Kind == SearchParams.Kind;
            // The readiness condition is repeated inside the UPDATE: of several workers finishing a fan-in's parents
            // at once, only the one whose statement sees all parents done (and the stage still Pending) wins.
            var won = await TryTransitionAsync(db, c.Id, c.Attempt, StageStatus.Pending, search ? StageStatus.Running : StageStatus.Queued,
                search ? "dependencies succeeded; the search starts" : "dependencies succeeded",
                s => s.SetProperty(x => x.QueuedAt, DateTime.UtcNow).SetProperty(x => x.JobId, (string?)null).SetProperty(x => x.StartedAt, x => search ? DateTime.UtcNow : x.StartedAt),
                extraCondition: q => q.Where(s => s.DependsOn.All(d => d.DependsOnStage!.Status == StageStatus.Succeeded || d.DependsOnStage!.Status == StageStatus.Cached)),
                ct: ct);
            if (!won) continue;
            if (search)
            {
                await Searches.AdvanceAsync(c.Id, ct);
                started++;
            }
            else queued.Add(c.Id);
        }
        // A fan-out's children get their jobs at once, not one after another: each enqueue is a few round trips to the
        // job store, and the last child would otherwise wait for all the others' (`pipeline bench handoff`).
        await Task.WhenAll(queued.Select(id => EnqueueAsync(id, ct)));
        await RefreshRunStatusAsync(runId, ct);
        return queued.Count + started;
    }

    /// <summary>The reason a manual retry records; automatic retries count their uses since the last one.</summary>
    public const string RetryRequested = "retry requested";

    /// <summary>Creates the Hangfire job of a Queued stage and records its id (also used by the reconciler for lost jobs).</summary>
    public Task EnqueueAsync(long stageId, CancellationToken ct = default) => EnqueueAsync(stageId, null, ct);

    /// <summary>As <see cref="EnqueueAsync(long, CancellationToken)"/>, the job starting after <paramref name="delay"/>.</summary>
    public async Task EnqueueAsync(long stageId, TimeSpan? delay, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var stage = await db.Stages.AsNoTracking().SingleAsync(s => s.Id == stageId, ct);
        if (stage.Status != StageStatus.Queued) return;
        var jobId = delay is { } wait && wait > TimeSpan.Zero
            ? jobs.Schedule<StageJob>(stage.Queue, j => j.RunAsync(stage.Id, stage.Attempt, CancellationToken.None), wait)
            : jobs.Enqueue<StageJob>(stage.Queue, j => j.RunAsync(stage.Id, stage.Attempt, CancellationToken.None));
        await db.Stages.Where(s => s.Id == stageId && s.Attempt == stage.Attempt && s.Status == StageStatus.Queued)
            .ExecuteUpdateAsync(s => s.SetProperty(x => x.JobId, jobId), ct);
        log.LogInformation("Stage {StageId} ({StageName}, attempt {Attempt}) enqueued on '{Queue}' as job {JobId}", stage.Id, stage.Name, stage.Attempt, stage.Queue, jobId);
    }

    /// <summary>Retries a Failed or Cancelled stage (a new attempt) and unblocks its dependents; the DAG resumes.</summary>
    public async Task RetryAsync(long stageId, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var stage = await db.Stages.AsNoTracking().SingleOrDefaultAsync(s => s.Id == stageId, ct)
            ?? throw EngineException.NotFound($"Stage {stageId} does not exist.");
        if (IsInterrupted(stage))
        {
            await RecoverLostAsync(db, stage, RetryRequested + ": ", ct);
            return;
        }
        if (stage.Status is not (StageStatus.Failed or StageStatus.Cancelled))
        {
            throw new EngineException($"Stage {stageId} ({stage.Name}) is {stage.Status}; only Failed, Cancelled or interrupted stages (running without a heartbeat) can be retried.");
        }
        if (stage.TrialId is not null)
        {
            throw new EngineException($"Stage {stageId} ({stage.Name}) is a search trial whose result its search has recorded; retry the search stage, or launch the run again (finished trials come from the cache).");
        }
        await TryTransitionAsync(db, stageId, stage.Attempt, stage.Status, StageStatus.Pending, RetryRequested,
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

    /// <summary>
    /// Re-runs a finished stage in place (a new attempt; its artifacts are recorded afresh) and every stage after it in
    /// the run, e.g. when its artifacts were lost. Stages after it usually come straight from the cache again.
    /// </summary>
    public async Task RerunAsync(long stageId, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var stage = await db.Stages.AsNoTracking().SingleOrDefaultAsync(s => s.Id == stageId, ct)
            ?? throw EngineException.NotFound($"Stage {stageId} does not exist.");
        if (!StageStatuses.IsTerminal(stage.Status))
        {
            throw new EngineException($"Stage {stageId} ({stage.Name}) is {stage.Status}; rerun a finished stage, or cancel this one first ('pipeline stages cancel {stageId}').");
        }
        var busy = (await DependentsAsync(db, stageId, ct)).Where(d => d.Status is StageStatus.Queued or StageStatus.Running).ToList();
        if (busy.Count > 0)
        {
            throw new EngineException($"Stage {stageId} ({stage.Name}) has stages after it that are still {busy[0].Status.ToString().ToLowerInvariant()} ({string.Join(", ", busy.Select(b => b.Name))}); wait for them or cancel them first.");
        }
        await ResetAsync(db, stage, "rerun requested", ct);
        await PromoteReadyAsync(stage.RunId, ct);
    }

    /// <summary>
    /// Self-healing cache: <paramref name="consumer"/> (running at <paramref name="attempt"/>) found the input at
    /// <paramref name="path"/> corrupt or missing. The damaged file is removed from the store (so no cache lookup
    /// reuses it again), the dependency that produced it is re-run in place, and the consumer after it, in this run.
    /// Returns false when the path is not one of the consumer's inputs or the heals are used up: the stage then fails.
    /// </summary>
    public async Task<bool> HealCorruptInputAsync(Stage consumer, int attempt, string path, string problem, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var producerId = await db.StageDependencies.Where(d => d.StageId == consumer.Id)
            .Where(d => db.Artifacts.Any(a => a.StageId == d.DependsOnStageId && a.Path == path))
            .Select(d => (long?)d.DependsOnStageId).FirstOrDefaultAsync(ct);
        if (producerId is null) return false;
        if (await AutomaticRetriesAsync(db, consumer.Id, CorruptInputReason, ct) >= MaxHealsPerStage) return false;

        var producer = await db.Stages.AsNoTracking().SingleAsync(s => s.Id == producerId, ct);
        var reason = $"{CorruptInputReason}: {path} of '{producer.Name}' ({problem}); re-running '{producer.Name}' first";
        if (!await TryTransitionAsync(db, consumer.Id, attempt, StageStatus.Running, StageStatus.Pending, reason,
                s => s.SetProperty(x => x.Attempt, x => x.Attempt + 1).SetProperty(x => x.Worker, (string?)null).SetProperty(x => x.JobId, (string?)null), ct: ct))
        {
            return true; // no longer ours to decide
        }
        log.LogWarning("Stage {StageId} ({StageName}) {Reason}", consumer.Id, consumer.Name, reason);
        await store.DeleteAsync(path, ct);
        await ResetAsync(db, producer, $"output {path} found corrupt by '{consumer.Name}'", ct);
        await PromoteReadyAsync(consumer.RunId, ct);
        return true;
    }

    /// <summary>
    /// How many of the stage's transitions since its last manual retry have a reason starting with
    /// <paramref name="reasonPrefix"/>: the count behind every bounded automatic retry (store outages, heals).
    /// </summary>
    public static async Task<int> AutomaticRetriesAsync(RunStoreContext db, long stageId, string reasonPrefix, CancellationToken ct)
    {
        var history = await db.StageTransitions.Where(t => t.StageId == stageId).OrderBy(t => t.Id).Select(t => t.Reason).ToListAsync(ct);
        return history.Skip(history.FindLastIndex(r => r == RetryRequested) + 1).Count(r => r.StartsWith(reasonPrefix, StringComparison.Ordinal));
    }

    /// <summary>The stage and every finished stage after it back to Pending as new attempts, their artifact records (not their logs) dropped.</summary>
    private async Task ResetAsync(RunStoreContext db, Stage stage, string reason, CancellationToken ct)
    {
        foreach (var s in new[] { stage }.Concat(await DependentsAsync(db, stage.Id, ct)))
        {
            if (!StageStatuses.IsTerminal(s.Status)) continue;
            await using var tx = await db.Database.BeginTransactionAsync(ct);
            // The attempt logs stay: a retried stage keeps the log of the attempt that failed.
            var logs = ArtifactPaths.LogFolder(s.RunId);
            await db.Artifacts.Where(a => a.StageId == s.Id && !a.Path.StartsWith(logs)).ExecuteDeleteAsync(ct);
            if (await TryTransitionAsync(db, s.Id, s.Attempt, s.Status, StageStatus.Pending, s.Id == stage.Id ? reason : $"'{stage.Name}' re-runs ({reason})",
                    x => x.SetProperty(y => y.Attempt, y => y.Attempt + 1).SetProperty(y => y.Error, (string?)null).SetProperty(y => y.CachedFromStageId, (long?)null)
                          .SetProperty(y => y.SummaryJson, (string?)null).SetProperty(y => y.CancelRequested, false).SetProperty(y => y.Progress, 0)
                          .SetProperty(y => y.FinishedAt, (DateTime?)null), ct: ct))
            {
                await tx.CommitAsync(ct);
            }
        }
        await RefreshRunStatusAsync(stage.RunId, ct);
    }

    /// <summary>Retries every Failed, Cancelled or interrupted stage of a run.</summary>
    public async Task RetryRunAsync(long runId, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var stages = await db.Stages.AsNoTracking().Where(s => s.RunId == runId).OrderBy(s => s.Id).ToListAsync(ct);
        if (stages.Count == 0) throw EngineException.NotFound($"Run {runId} does not exist.");
        // A failed or cancelled trial is a recorded result of its search, not something to redo; an interrupted one resumes.
        var ids = stages.Where(s => (s.TrialId is null && s.Status is StageStatus.Failed or StageStatus.Cancelled) || IsInterrupted(s)).Select(s => s.Id).ToList();
        // The embedded job queue lives in memory: queued stages of an earlier process (Ctrl-C during `run --wait`)
        // lost their jobs with it and get new ones here.
        var orphaned = mode.EmbeddedDatabase ? stages.Where(s => s.Status == StageStatus.Queued).ToList() : [];
        foreach (var q in orphaned) await EnqueueAsync(q.Id, ct);
        if (ids.Count == 0 && orphaned.Count == 0)
        {
            throw new EngineException(stages.Any(s => s.Status is StageStatus.Queued or StageStatus.Running)
                ? $"Run {runId} has no failed, cancelled or interrupted stage: its queued and running stages continue on the workers."
                : $"Run {runId} has no failed, cancelled or interrupted stage to retry.");
        }
        foreach (var id in ids)
        {
            var stage = await db.Stages.AsNoTracking().SingleAsync(s => s.Id == id, ct);
            if ((stage.TrialId is null && stage.Status is StageStatus.Failed or StageStatus.Cancelled) || IsInterrupted(stage)) await RetryAsync(id, ct);
        }
    }

    /// <summary>Running, but its worker stopped heartbeating: the process died (kill -9, a lost VM, a laptop closed).</summary>
    public bool IsInterrupted(Stage stage) =>
        stage.Status == StageStatus.Running && stage.Kind != SearchParams.Kind && stage.HeartbeatAt < DateTime.UtcNow - options.Value.HeartbeatTimeout;

    /// <summary>
    /// A stage whose worker was lost goes back to the queue as a new attempt (the next one resumes from its checkpoint),
    /// or ends Cancelled when cancellation had been asked for. The reconciler and a retry both come here.
    /// </summary>
    public async Task<bool> RecoverLostAsync(RunStoreContext db, Stage stage, string reasonPrefix = "", CancellationToken ct = default)
    {
        var target = stage.CancelRequested ? StageStatus.Cancelled : StageStatus.Queued;
        var reason = $"{reasonPrefix}worker {stage.Worker} lost: no heartbeat since {stage.HeartbeatAt:O}";
        if (!await TryTransitionAsync(db, stage.Id, stage.Attempt, StageStatus.Running, target, reason,
                x => x.SetProperty(y => y.Attempt, y => y.Attempt + 1).SetProperty(y => y.Worker, (string?)null)
                      .SetProperty(y => y.JobId, (string?)null).SetProperty(y => y.QueuedAt, DateTime.UtcNow), ct: ct))
        {
            return false;
        }
        log.LogWarning("Stage {StageId}: {Reason}; {Action}", stage.Id, reason, target == StageStatus.Queued ? "re-queued as a new attempt" : "cancelled as requested");
        if (target == StageStatus.Queued) await EnqueueAsync(stage.Id, ct);
        else
        {
            await BlockDependentsAsync(stage.Id, "a dependency was cancelled", ct);
            await RefreshRunStatusAsync(stage.RunId, ct);
        }
        return true;
    }

    /// <summary>
    /// Cancels a stage: a waiting one ends Cancelled at once; a running one gets its cancellation token fired (the
    /// worker sees the request within one heartbeat) and ends Cancelled when it stops. Dependents are blocked.
    /// </summary>
    public async Task CancelAsync(long stageId, string reason = "cancel requested", CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var stage = await db.Stages.AsNoTracking().SingleOrDefaultAsync(s => s.Id == stageId, ct)
            ?? throw EngineException.NotFound($"Stage {stageId} does not exist.");
        if (StageStatuses.IsTerminal(stage.Status)) return;
        if (stage.Status == StageStatus.Running && stage.Kind == SearchParams.Kind)
        {
            await CancelSearchAsync(db, stage, reason, ct);
            return;
        }
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

    /// <summary>A running search ends Cancelled with its unfinished trials; their stages are cancelled too.</summary>
    private async Task CancelSearchAsync(RunStoreContext db, Stage search, string reason, CancellationToken ct)
    {
        if (!await TryTransitionAsync(db, search.Id, search.Attempt, StageStatus.Running, StageStatus.Cancelled, reason, s => s.SetProperty(x => x.FinishedAt, DateTime.UtcNow), ct: ct)) return;
        var trials = await db.SearchTrials.Where(t => t.SearchStageId == search.Id && t.Status == SearchTrialStatus.Running).Select(t => t.Id).ToListAsync(ct);
        await db.SearchTrials.Where(t => trials.Contains(t.Id))
            .ExecuteUpdateAsync(s => s.SetProperty(t => t.Status, SearchTrialStatus.Cancelled).SetProperty(t => t.FinishedAt, DateTime.UtcNow), ct);
        var open = await db.Stages.Where(s => s.TrialId != null && trials.Contains(s.TrialId.Value)).OrderByDescending(s => s.Id).Select(s => s.Id).ToListAsync(ct);
        foreach (var id in open) await CancelAsync(id, $"search '{search.Name}' cancelled", ct);
        await BlockDependentsAsync(search.Id, $"dependency '{search.Name}' was cancelled", ct);
        await RefreshRunStatusAsync(search.RunId, ct);
    }

    public async Task CancelRunAsync(long runId, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var ids = await db.Stages.Where(s => s.RunId == runId).OrderByDescending(s => s.Id).Select(s => s.Id).ToListAsync(ct);
        if (ids.Count == 0) throw EngineException.NotFound($"Run {runId} does not exist.");
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

    /// <summary>
    /// Derives the run's status from its stages and records it (and the finish time when it ends). Serialised per run
    /// (an advisory lock across processes, a semaphore within one): two stages ending at once each refresh, and without
    /// it the one that read the stages first could write its older answer last, leaving a finished run "running".
    /// </summary>
    public async Task RefreshRunStatusAsync(long runId, CancellationToken ct = default)
    {
        // Every stage transition comes here: the moment a trial ends, its search records it and proposes the next.
        await Searches.AdvanceRunAsync(runId, ct);
        await RunStatusGate.WaitAsync(ct);
        try
        {
            await using var db = await dbs.CreateDbContextAsync(ct);
            await using var tx = await db.Database.BeginTransactionAsync(ct);
            await RunStoreLocks.LockAsync(db, $"2a40{runId:x12}", ct);
            // Trials count through their search: a failed or pruned trial does not fail the run, its search decides; but
            // a trial still running (a cancelled one winding down) keeps the run running.
            var stages = await db.Stages.Where(s => s.RunId == runId).Select(s => new { s.Status, Trial = s.TrialId != null }).ToListAsync(ct);
            var statuses = stages.Where(s => !s.Trial).Select(s => s.Status).ToList();
            var status = statuses switch
            {
                _ when statuses.All(StageStatuses.IsDone) => RunStatus.Succeeded,
                _ when stages.Any(s => s.Status is StageStatus.Queued or StageStatus.Running) => RunStatus.Running,
                _ when statuses.Any(s => s is StageStatus.Pending) && statuses.Any(s => s is not StageStatus.Pending) => RunStatus.Running,
                _ when statuses.All(s => s is StageStatus.Pending) => RunStatus.Pending,
                _ when statuses.Any(s => s is StageStatus.Failed) => RunStatus.Failed,
                _ when statuses.Any(s => s is StageStatus.Cancelled) => RunStatus.Cancelled,
                _ => RunStatus.Failed,
            };
            var finished = status is RunStatus.Succeeded or RunStatus.Failed or RunStatus.Cancelled ? DateTime.UtcNow : (DateTime?)null;
            await db.Runs.Where(r => r.Id == runId && r.Status != status)
                .ExecuteUpdateAsync(s => s.SetProperty(r => r.Status, status).SetProperty(r => r.FinishedAt, finished), ct);
            await tx.CommitAsync(ct);
        }
        finally
        {
            RunStatusGate.Release();
        }
    }

    private static readonly SemaphoreSlim RunStatusGate = new(1, 1);

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
public sealed class EngineException(string message, bool isNotFound = false) : Exception(message)
{
    /// <summary>The run or stage named does not exist (HTTP 404), rather than being in the wrong state (409).</summary>
    public bool IsNotFound { get; } = isNotFound;

    public static EngineException NotFound(string message) => new(message, isNotFound: true);
}
