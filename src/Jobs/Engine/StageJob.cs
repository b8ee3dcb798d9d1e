using System.Text.Json;
using System.Text.Json.Nodes;
using Hangfire;
using Mediator;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Pipeline.Jobs.RunSpecs;
using Pipeline.Jobs.RunStore;
using Pipeline.Stages.Artifacts;
using Pipeline.Stages.Execution;
using Pipeline.Jobs.Configuration;

namespace Pipeline.Jobs.Engine;

/// <summary>
/// The Hangfire job that runs one attempt of one stage: claim it, compute its content key, wait for a twin computing
/// the same key, reuse a cached result or send the stage request through the mediator while heartbeating, then record
/// the outcome and release dependents. A delivery whose stage is no longer Queued at that attempt (duplicate, stale,
/// cancelled) does nothing. The attempt writes only through its <see cref="StageFence"/>; a stopping worker hands the
/// stage back (same attempt) after a grace period, whatever the handler is doing.
/// </summary>
public sealed class StageJob(
    IDbContextFactory<RunStoreContext> dbs,
    StageEngine engine,
    IArtifactStore store,
    IMediator mediator,
    IOptions<PipelineOptions> options,
    PipelineMode mode,
    IHostApplicationLifetime lifetime,
    ILoggerFactory loggers)
{
    private readonly ILogger _log = loggers.CreateLogger<StageJob>();

    // Failures are the engine's business (recorded, dependents blocked, retried on request): Hangfire must not retry.
    [AutomaticRetry(Attempts = 0, OnAttemptsExceeded = AttemptsExceededAction.Fail)]
    public async Task RunAsync(long stageId, int attempt, CancellationToken cancellationToken)
    {
        var worker = options.Value.ResolvedWorkerName;
        Stage stage;
        await using (var db = await dbs.CreateDbContextAsync(cancellationToken))
        {
            var claimed = await StageEngine.TryTransitionAsync(db, stageId, attempt, StageStatus.Queued, StageStatus.Running, $"started on {worker}",
                s => s.SetProperty(x => x.Worker, worker).SetProperty(x => x.StartedAt, DateTime.UtcNow)
                      .SetProperty(x => x.HeartbeatAt, DateTime.UtcNow).SetProperty(x => x.Progress, 0).SetProperty(x => x.ProgressMessage, (string?)null),
                extraCondition: q => q.Where(s => !s.CancelRequested), ct: cancellationToken);
            if (!claimed)
            {
                _log.LogInformation("Job for stage {StageId} attempt {Attempt} is stale or a duplicate delivery; nothing to do", stageId, attempt);
                return;
            }
            stage = await db.Stages.AsNoTracking().SingleAsync(s => s.Id == stageId, cancellationToken);
        }

        StageKind kind;
        IStageParams parameters;
        IReadOnlyDictionary<string, IReadOnlyList<ArtifactInfo>> inputs;
        string key;
        try
        {
            kind = StageCatalog.Get(stage.Kind);
            parameters = kind.DeserializeParams(JsonDocument.Parse(stage.ParamsJson).RootElement);
            inputs = await LoadInputsAsync(stageId, stage.RunId, cancellationToken);
            key = ContentKeys.For(kind, parameters, stage.ParamsJson, inputs);
            if (await DeferToTwinAsync(stage, key, cancellationToken)) return;
            if (await TryReuseCachedAsync(stage, key, cancellationToken)) return;
        }
        catch (OperationCanceledException) when (lifetime.ApplicationStopping.IsCancellationRequested)
        {
            throw await HandBackAsync(stage, worker, cancellationToken);
        }

        var pruning = await engine.Searches.PruningForAsync(stage.TrialId, cancellationToken);
        var fence = new StageFence(dbs, stageId, attempt);
        var heartbeat = new StageHeartbeat(dbs, stageId, attempt);
        // Attempt-scoped, and unique per delivery: a replaced attempt never shares local files with its successor.
        var scratch = Path.Combine(mode.DataFolder, "scratch", $"{stageId}-{attempt}-{Guid.NewGuid():N}"[..32]);
        Directory.CreateDirectory(scratch);
        await using var stageLog = new StageLog(dbs, loggers.CreateLogger($"Pipeline.Stages.{kind.RequestType?.Name ?? kind.Kind}"), stage.RunId, stageId, stage.Name,
            attempt, scratch);
        var context = new StageContext
        {
            RunId = stage.RunId,
            StageId = stageId,
            StageName = stage.Name,
            Attempt = attempt,
            Store = new FencedArtifactStore(store, fence),
            OutputFolder = ArtifactPaths.StageFolder(stage.RunId, stage.Kind, key),
            StateFolder = ArtifactPaths.StateFolder(stage.Kind, key),
            Inputs = inputs,
            Progress = heartbeat,
            Logger = stageLog,
            ScratchFolder = scratch,
            Pruning = pruning,
        };

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, lifetime.ApplicationStopping);
        // The heartbeat has its own end: it keeps beating through the shutdown grace period (the stage is still ours
        // while it checkpoints), and stops once the handler has returned or was left behind.
        using var beatEnd = new CancellationTokenSource();
        var beating = BeatUntilDoneAsync(heartbeat, stop, stageId, beatEnd.Token);
        // On the thread pool: a handler that computes before its first await must not hold up the grace-period watch.
        var work = Task.Run(() => mediator.Send(kind.CreateRequest(parameters, context), stop.Token).AsTask(), CancellationToken.None);
        var outcome = await RunWithinGraceAsync(work, stop, stage, fence);
        // Before the outcome is recorded, so a finished stage already lists its log (the failure is in it: the logging
        // behaviour logs it through the stage's logger); while the heartbeat still beats, and bounded, so an unreachable
        // store delays the outcome by seconds, not by its clients' retries.
        using (var upload = new CancellationTokenSource(StageLog.UploadTimeout)) await stageLog.CompleteAsync(store, upload.Token);
        await beatEnd.CancelAsync();
        var (stillOurs, cancelRequested) = await beating;
        try
        {
            await RecordOutcomeAsync(stage, attempt, context, fence, outcome, stillOurs, cancelRequested, worker, cancellationToken);
        }
        finally
        {
            if (!outcome.TimedOut) DeleteScratch(scratch); // a timed-out stage may still be using it; the next start cleans up
        }
    }

    /// <summary>What became of the handler: its result, its exception, or neither because it outlived the grace period.</summary>
    private sealed record Outcome(StageResult? Result, Exception? Error, bool TimedOut);

    /// <summary>
    /// Awaits the handler. When the worker starts stopping, the handler's token fires (checkpoint and return) and it gets
    /// <see cref="PipelineOptions.ShutdownGracePeriod"/>; a handler still busy after that (inside one long native call,
    /// which no token can interrupt) is left behind with its fence revoked, so it can no longer write anything.
    /// </summary>
    private async Task<Outcome> RunWithinGraceAsync(Task<StageResult> work, CancellationTokenSource stop, Stage stage, StageFence fence)
    {
        var stopping = new TaskCompletionSource();
        await using (lifetime.ApplicationStopping.Register(() => stopping.TrySetResult()))
        {
            if (await Task.WhenAny(work, stopping.Task) != work)
            {
                var grace = options.Value.ShutdownGracePeriod;
                _log.LogWarning("Worker stopping: stage {StageId} ({StageName}) has {Grace} to checkpoint and hand back", stage.Id, stage.Name, grace);
                await stop.CancelAsync();
                if (await Task.WhenAny(work, Task.Delay(grace, CancellationToken.None)) != work)
                {
                    fence.Revoke("the worker stopped and the stage did not return within the shutdown grace period");
                    AbandonedWork.Add();
                    _log.LogWarning("Stage {StageId} ({StageName}) did not return within {Grace}; handing it back without waiting", stage.Id, stage.Name, grace);
                    _ = work.ContinueWith(t => t.Exception, TaskScheduler.Default); // observed: it ends in a process that is exiting
                    return new Outcome(null, null, TimedOut: true);
                }
            }
        }
        try
        {
            return new Outcome(await work, null, false);
        }
        catch (Exception e)
        {
            return new Outcome(null, e, false);
        }
    }

    private async Task RecordOutcomeAsync(Stage stage, int attempt, StageContext context, StageFence fence, Outcome outcome,
        bool stillOurs, bool cancelRequested, string worker, CancellationToken hangfireToken)
    {
        if (!stillOurs)
        {
            // Replaced (lost heartbeat, then re-queued as a new attempt): whatever this attempt wrote is not ours to clean up.
            fence.Revoke("taken over by a newer attempt");
            _log.LogWarning("Stage {StageId} attempt {Attempt} was taken over by a newer attempt; this attempt stops and records nothing", stage.Id, attempt);
            return;
        }
        if (outcome.Result is { } result)
        {
            await SucceedAsync(stage, attempt, result, CancellationToken.None);
            return;
        }
        var e = outcome.Error;
        if (cancelRequested && (e is OperationCanceledException || outcome.TimedOut))
        {
            await DeleteOutputsAsync(context);
            await FinishAsync(stage, attempt, StageStatus.Cancelled, "cancelled on request", null, CancellationToken.None);
            return;
        }
        if (lifetime.ApplicationStopping.IsCancellationRequested)
        {
            // The worker is stopping (SIGTERM, eviction, Ctrl-C): whatever the handler threw as the process wound down
            // (libtorch fails calls once shutdown begins), the stage is handed back, not failed; its checkpoint survives.
            if (!outcome.TimedOut) await DeleteOutputsAsync(context);
            throw await HandBackAsync(stage, worker, hangfireToken, outcome.TimedOut ? "did not return within the shutdown grace period" : null);
        }
        e ??= new InvalidOperationException("the stage neither returned nor failed");
        await DeleteOutputsAsync(context);
        if (e is TrialPrunedException pruned)
        {
            var summary = pruned.Summary.DeepClone().AsObject();
            summary["step"] = pruned.Step;
            await FinishAsync(stage, attempt, StageStatus.Pruned, $"pruned by successive halving at step {pruned.Step} ({pruned.Value:G4}); its checkpoint is kept", null,
                CancellationToken.None, summary.ToJsonString());
            return;
        }
        if (CorruptInput(e) is var (path, problem) && await engine.HealCorruptInputAsync(stage, attempt, path, problem, CancellationToken.None)) return;
        var outage = StoreOutage.IsUnreachable(e);
        if (outage && await RetryAfterStoreOutageAsync(stage, attempt, e)) return;
        var message = outage
            ? $"The artifact store was unreachable ({StoreOutage.Describe(e)}) after {options.Value.StoreOutageRetries} automatic retries. " +
              $"Check ConnectionStrings:Blobs and the storage account's network access, then 'pipeline stages retry {stage.Id}'."
            : e is StageInputException ? e.Message : $"{e.GetType().Name}: {e.Message}";
        _log.LogError(e, "Stage {StageId} ({StageName}) attempt {Attempt} failed", stage.Id, stage.Name, attempt);
        await FinishAsync(stage, attempt, StageStatus.Failed, "failed", message, CancellationToken.None);
        throw new StageFailedException($"Stage {stage.Name} (id {stage.Id}) failed: {message}", e);
    }

    /// <summary>The store path of an input that a read found corrupt or missing, from anywhere in the exception's causes.</summary>
    private static (string Path, string Problem)? CorruptInput(Exception e)
    {
        for (var c = e; c is not null; c = c.InnerException)
        {
            if (c is ArtifactCorruptedException corrupt) return (corrupt.ArtifactPath, "sha256 mismatch");
            if (c is ArtifactNotFoundException { FileName: { } missing }) return (missing, "missing");
        }
        return null;
    }

    /// <summary>
    /// Running → Queued at the same attempt, so that another worker resumes the stage, and the exception that ends this
    /// job the way Hangfire requeues it at once: returned once Hangfire's own server is stopping (the host's stopping
    /// signal comes first, Hangfire's a moment later). Thrown earlier, Hangfire would record the job as failed.
    /// </summary>
    private async Task<OperationCanceledException> HandBackAsync(Stage stage, string worker, CancellationToken hangfireToken, string? detail = null)
    {
        await using (var db = await dbs.CreateDbContextAsync(CancellationToken.None))
        {
            var handedBack = await StageEngine.TryTransitionAsync(db, stage.Id, stage.Attempt, StageStatus.Running, StageStatus.Queued,
                detail is null ? $"worker {worker} shut down" : $"worker {worker} shut down; the stage {detail}",
                s => s.SetProperty(x => x.Worker, (string?)null).SetProperty(x => x.QueuedAt, DateTime.UtcNow), ct: CancellationToken.None);
            if (handedBack) _log.LogInformation("Stage {StageId} ({StageName}) handed back: worker {Worker} is stopping", stage.Id, stage.Name, worker);
        }
        try
        {
            await Task.Delay(options.Value.ShutdownGracePeriod + TimeSpan.FromSeconds(5), hangfireToken);
        }
        catch (OperationCanceledException)
        {
            // Hangfire is stopping: now the exception means "aborted, requeue".
        }
        return new OperationCanceledException($"Stage {stage.Id} ({stage.Name}) handed back: the worker is stopping", hangfireToken);
    }

    /// <summary>
    /// An artifact-store outage is not the stage's fault: the stage goes back to the queue as a new attempt after
    /// <see cref="PipelineOptions.StoreOutageRetryDelay"/>, at most <see cref="PipelineOptions.StoreOutageRetries"/>
    /// times since the last manual retry. Returns false when the retries are used up.
    /// </summary>
    private async Task<bool> RetryAfterStoreOutageAsync(Stage stage, int attempt, Exception e)
    {
        await using var db = await dbs.CreateDbContextAsync(CancellationToken.None);
        var used = await StageEngine.AutomaticRetriesAsync(db, stage.Id, StoreOutage.ReasonPrefix, CancellationToken.None);
        if (used >= options.Value.StoreOutageRetries) return false;
        var delay = options.Value.StoreOutageRetryDelay;
        var reason = $"{StoreOutage.ReasonPrefix} ({StoreOutage.Describe(e)}); automatic retry {used + 1} of {options.Value.StoreOutageRetries} in {delay.TotalSeconds:F0} s";
        if (!await StageEngine.TryTransitionAsync(db, stage.Id, attempt, StageStatus.Running, StageStatus.Queued, reason,
                s => s.SetProperty(x => x.Attempt, x => x.Attempt + 1).SetProperty(x => x.Worker, (string?)null)
                      .SetProperty(x => x.JobId, (string?)null).SetProperty(x => x.QueuedAt, DateTime.UtcNow), ct: CancellationToken.None))
        {
            return true; // no longer ours to decide
        }
        _log.LogWarning("Stage {StageId} ({StageName}): {Reason}", stage.Id, stage.Name, reason);
        await engine.EnqueueAsync(stage.Id, delay, CancellationToken.None);
        return true;
    }

    /// <summary>
    /// One attempt per content key at a time: a stage whose twin (same kind, params and inputs, in this or another run)
    /// is running now waits for it instead of computing the same thing into the same resumable state; when it starts
    /// again it finds the twin's result in the cache, or, if the twin failed, resumes from its checkpoints.
    /// </summary>
    private async Task<bool> DeferToTwinAsync(Stage stage, string key, CancellationToken ct)
    {
        var fresh = DateTime.UtcNow - options.Value.HeartbeatTimeout;
        Stage? twin;
        await ContentKeyClaims.WaitAsync(ct);
        try
        {
            await using var db = await dbs.CreateDbContextAsync(ct);
            await using var tx = await db.Database.BeginTransactionAsync(ct);
            await RunStoreLocks.LockAsync(db, key, ct);
            var running = db.Stages.AsNoTracking().Where(s => s.ContentKey == key && s.Id != stage.Id && s.Status == StageStatus.Running && s.HeartbeatAt > fresh);
            // The embedded store serves one process: a twin recorded as running by another process died with it.
            if (mode.EmbeddedDatabase) running = running.Where(s => s.Worker == options.Value.ResolvedWorkerName);
            twin = await running.OrderBy(s => s.Id).FirstOrDefaultAsync(ct);
            await db.Stages.Where(s => s.Id == stage.Id).ExecuteUpdateAsync(s => s.SetProperty(x => x.ContentKey, key), ct);
            await tx.CommitAsync(ct);
        }
        finally
        {
            ContentKeyClaims.Release();
        }
        if (twin is null) return false;

        var delay = options.Value.ReconcileInterval * 2;
        await using var update = await dbs.CreateDbContextAsync(ct);
        if (await StageEngine.TryTransitionAsync(update, stage.Id, stage.Attempt, StageStatus.Running, StageStatus.Queued,
                $"waiting for stage {twin.Id} of run {twin.RunId}, which computes the same content key",
                s => s.SetProperty(x => x.Worker, (string?)null).SetProperty(x => x.QueuedAt, DateTime.UtcNow), ct: ct))
        {
            _log.LogInformation("Stage {StageId} ({StageName}) waits for stage {TwinId} of run {TwinRunId} (same content key); next look in {Delay}",
                stage.Id, stage.Name, twin.Id, twin.RunId, delay);
            await engine.EnqueueAsync(stage.Id, delay, ct);
        }
        return true;
    }

    // Within one process (embedded SQLite, several worker threads) the claim is serialised here; across processes by the
    // PostgreSQL advisory lock in RunStoreLocks.
    private static readonly SemaphoreSlim ContentKeyClaims = new(1, 1);

    private void DeleteScratch(string scratch)
    {
        try
        {
            Directory.Delete(scratch, recursive: true);
        }
        catch (IOException e)
        {
            _log.LogDebug(e, "Scratch folder {Scratch} was not removed", scratch);
        }
    }

    /// <summary>Beats until <paramref name="end"/>; cancels the stage (<paramref name="stop"/>) when it is no longer ours or cancellation was asked for.</summary>
    private async Task<(bool StillOurs, bool CancelRequested)> BeatUntilDoneAsync(StageHeartbeat heartbeat, CancellationTokenSource stop, long stageId, CancellationToken end)
    {
        var interval = options.Value.HeartbeatInterval;
        var last = (StillOurs: true, CancelRequested: false);
        while (true)
        {
            try
            {
                await Task.Delay(interval, end);
            }
            catch (OperationCanceledException)
            {
                return await heartbeat.BeatAsync(CancellationToken.None);
            }
            try
            {
                last = await heartbeat.BeatAsync(CancellationToken.None);
            }
            catch (Exception e) when (e is DbUpdateException or InvalidOperationException or TimeoutException or System.Data.Common.DbException)
            {
                _log.LogWarning(e, "Heartbeat of stage {StageId} failed; retrying", stageId);
                continue;
            }
            if (!last.StillOurs || last.CancelRequested) await stop.CancelAsync();
        }
    }

    private async Task<IReadOnlyDictionary<string, IReadOnlyList<ArtifactInfo>>> LoadInputsAsync(long stageId, long runId, CancellationToken ct)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var deps = await db.StageDependencies.Where(d => d.StageId == stageId)
            .Select(d => new { d.DependsOnStageId, d.DependsOnStage!.Name }).ToListAsync(ct);
        var result = new Dictionary<string, IReadOnlyList<ArtifactInfo>>(StringComparer.Ordinal);
        // A dependency's attempt logs are not its outputs: they differ between runs and would defeat the cache.
        var logs = ArtifactPaths.LogFolder(runId);
        foreach (var d in deps)
        {
            var records = await db.Artifacts.Where(a => a.StageId == d.DependsOnStageId && !a.Path.StartsWith(logs)).OrderBy(a => a.Path).ToListAsync(ct);
            result[d.Name] = [.. records.Select(r => new ArtifactInfo(r.Path, r.Bytes, r.Sha256, r.MediaType, new Uri(r.Uri)))];
        }
        return result;
    }

    /// <summary>A succeeded stage with the same content key whose artifacts are all still intact is reused as is.</summary>
    private async Task<bool> TryReuseCachedAsync(Stage stage, string key, CancellationToken ct)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        if (stage.NoCache || await db.Runs.Where(r => r.Id == stage.RunId).Select(r => r.NoCache).SingleAsync(ct)) return false;
        var candidates = await db.Stages.AsNoTracking()
            .Where(s => s.ContentKey == key && s.Id != stage.Id && s.Status == StageStatus.Succeeded)
            .OrderByDescending(s => s.FinishedAt).Take(5).ToListAsync(ct);
        foreach (var source in candidates)
        {
            var logs = ArtifactPaths.LogFolder(source.RunId);
            var artifacts = await db.Artifacts.AsNoTracking().Where(a => a.StageId == source.Id && !a.Path.StartsWith(logs)).ToListAsync(ct);
            var intact = true;
            foreach (var a in artifacts)
            {
                var info = await store.GetInfoAsync(a.Path, ct);
                if (info is null || info.Sha256 != a.Sha256 || info.Bytes != a.Bytes)
                {
                    intact = false;
                    break;
                }
            }
            if (!intact) continue;

            await using var tx = await db.Database.BeginTransactionAsync(ct);
            var now = DateTime.UtcNow;
            db.Artifacts.AddRange(artifacts.Select(a => new ArtifactRecord
            {
                RunId = stage.RunId,
                StageId = stage.Id,
                Path = a.Path,
                Uri = a.Uri,
                Bytes = a.Bytes,
                Sha256 = a.Sha256,
                MediaType = a.MediaType,
                CreatedAt = now,
            }));
            await db.SaveChangesAsync(ct);
            var won = await StageEngine.TryTransitionAsync(db, stage.Id, stage.Attempt, StageStatus.Running, StageStatus.Cached,
                $"reused stage {source.Id} of run {source.RunId} (same content key)",
                s => s.SetProperty(x => x.CachedFromStageId, source.Id).SetProperty(x => x.SummaryJson, source.SummaryJson)
                      .SetProperty(x => x.Progress, 1).SetProperty(x => x.FinishedAt, now), ct: ct);
            if (!won) return true;
            await tx.CommitAsync(ct);
            _log.LogInformation("Stage {StageId} ({StageName}) reused the outputs of stage {SourceStageId}", stage.Id, stage.Name, source.Id);
            await engine.PromoteReadyAsync(stage.RunId, ct);
            return true;
        }
        return false;
    }

    private async Task SucceedAsync(Stage stage, int attempt, StageResult result, CancellationToken ct)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        var now = DateTime.UtcNow;
        db.Artifacts.AddRange(result.Artifacts.Select(a => ArtifactRecord.Of(stage, a, now)));
        await db.SaveChangesAsync(ct);
        var summary = result.Summary?.ToJsonString();
        if (!await StageEngine.TryTransitionAsync(db, stage.Id, attempt, StageStatus.Running, StageStatus.Succeeded, "succeeded",
                s => s.SetProperty(x => x.SummaryJson, summary).SetProperty(x => x.Progress, 1).SetProperty(x => x.FinishedAt, now), ct: ct))
        {
            return; // taken over or cancelled meanwhile: the transaction rolls back
        }
        await tx.CommitAsync(ct);
        await engine.PromoteReadyAsync(stage.RunId, ct);
    }

    private async Task FinishAsync(Stage stage, int attempt, StageStatus to, string reason, string? error, CancellationToken cancellationToken, string? summary = null)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var won = await StageEngine.TryTransitionAsync(db, stage.Id, attempt, StageStatus.Running, to, error is null ? reason : $"{reason}: {error}",
            s => s.SetProperty(x => x.Error, error is null ? null : StageEngine.Truncate(error, 4000)).SetProperty(x => x.FinishedAt, DateTime.UtcNow)
                  .SetProperty(x => x.SummaryJson, x => summary ?? x.SummaryJson), ct: cancellationToken);
        if (won) await engine.BlockDependentsAsync(stage.Id, $"dependency '{stage.Name}' {to.ToString().ToLowerInvariant()}", cancellationToken);
        await engine.RefreshRunStatusAsync(stage.RunId, cancellationToken);
    }

    /// <summary>
    /// A failed or cancelled attempt leaves nothing behind in the store. Deletes go through the attempt's fenced store,
    /// so an attempt that lost the stage meanwhile deletes nothing its successor wrote.
    /// </summary>
    private async Task DeleteOutputsAsync(StageContext context)
    {
        foreach (var a in context.Outputs)
        {
            try
            {
                await context.Store.DeleteAsync(a.Path, CancellationToken.None);
            }
            catch (StaleAttemptException)
            {
                return;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Unrecorded leftovers are harmless (the run store lists only committed artifacts); the next attempt overwrites them.
                _log.LogWarning("Could not delete {Path} of a failed attempt: {Error}", a.Path, StoreOutage.Describe(e));
            }
        }
    }
}

/// <summary>Thrown to Hangfire after the failure is recorded, so its dashboard shows the job as failed too.</summary>
public sealed class StageFailedException(string message, Exception inner) : Exception(message, inner);
