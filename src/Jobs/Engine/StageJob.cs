using System.Text.Json;
using System.Text.Json.Nodes;
using Hangfire;
using Mediator;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Pipeline.Jobs.Hosting;
using Pipeline.Jobs.RunSpecs;
using Pipeline.Jobs.RunStore;
using Pipeline.Stages.Artifacts;
using Pipeline.Stages.Execution;

namespace Pipeline.Jobs.Engine;

/// <summary>
/// The Hangfire job that runs one attempt of one stage: claim it, compute its content key, reuse a cached result or
/// send the stage request through the mediator while heartbeating, then record the outcome and release dependents.
/// A delivery whose stage is no longer Queued at that attempt (duplicate, stale, cancelled) does nothing.
/// </summary>
public sealed class StageJob(
    IDbContextFactory<RunStoreContext> dbs,
    StageEngine engine,
    IArtifactStore store,
    IMediator mediator,
    IOptions<PipelineOptions> options,
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
                      .SetProperty(x => x.HeartbeatAt, DateTime.UtcNow).SetProperty(x => x.Progress, 0),
                extraCondition: q => q.Where(s => !s.CancelRequested), ct: cancellationToken);
            if (!claimed)
            {
                _log.LogInformation("Job for stage {StageId} attempt {Attempt} is stale or a duplicate delivery; nothing to do", stageId, attempt);
                return;
            }
            stage = await db.Stages.AsNoTracking().SingleAsync(s => s.Id == stageId, cancellationToken);
        }

        var kind = StageCatalog.Get(stage.Kind);
        var parameters = kind.DeserializeParams(JsonDocument.Parse(stage.ParamsJson).RootElement);
        var inputs = await LoadInputsAsync(stageId, cancellationToken);
        var key = ContentKeys.Compute(kind.Kind, kind.Version, stage.ParamsJson, inputs, (parameters as IExternalInputs)?.FingerprintExternalInputs());
        await using (var db = await dbs.CreateDbContextAsync(cancellationToken))
        {
            await db.Stages.Where(s => s.Id == stageId).ExecuteUpdateAsync(s => s.SetProperty(x => x.ContentKey, key), cancellationToken);
        }

        if (await TryReuseCachedAsync(stage, key, cancellationToken)) return;

        var heartbeat = new StageHeartbeat(dbs, stageId, attempt);
        var scratch = Path.Combine(Path.GetFullPath(options.Value.DataFolder), "scratch", $"{stageId}-{attempt}");
        Directory.CreateDirectory(scratch);
        var context = new StageContext
        {
            RunId = stage.RunId,
            StageId = stageId,
            StageName = stage.Name,
            Attempt = attempt,
            Store = store,
            OutputFolder = ArtifactPaths.StageFolder(stage.RunId, stage.Kind, key),
            Inputs = inputs,
            Progress = heartbeat,
            Logger = loggers.CreateLogger($"Pipeline.Stages.{kind.RequestType.Name}"),
            ScratchFolder = scratch,
        };

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var beating = BeatUntilDoneAsync(heartbeat, stop, stageId);
        try
        {
            var result = await mediator.Send(kind.CreateRequest(parameters, context), stop.Token);
            await stop.CancelAsync();
            var (stillOurs, _) = await beating;
            if (!stillOurs) throw new OperationCanceledException("the stage was taken over after a lost heartbeat");
            await SucceedAsync(stage, attempt, result, cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException || stop.IsCancellationRequested)
        {
            await stop.CancelAsync();
            var (stillOurs, cancelRequested) = await beating;
            await DeleteOutputsAsync(context);
            if (!stillOurs)
            {
                _log.LogWarning("Stage {StageId} attempt {Attempt} was taken over by another worker; this attempt's outputs were discarded", stageId, attempt);
                return;
            }
            if (e is OperationCanceledException && cancelRequested)
            {
                await FinishAsync(stage, attempt, StageStatus.Cancelled, "cancelled on request", null, cancellationToken: CancellationToken.None);
                return;
            }
            if (e is OperationCanceledException && cancellationToken.IsCancellationRequested)
            {
                // The worker is shutting down (SIGTERM, eviction): hand the stage back so this job's re-delivery resumes it.
                await using var db = await dbs.CreateDbContextAsync(CancellationToken.None);
                await StageEngine.TryTransitionAsync(db, stageId, attempt, StageStatus.Running, StageStatus.Queued, $"worker {worker} shut down",
                    s => s.SetProperty(x => x.Worker, (string?)null), ct: CancellationToken.None);
                throw;
            }
            var message = e is StageInputException ? e.Message : $"{e.GetType().Name}: {e.Message}";
            _log.LogError(e, "Stage {StageId} ({StageName}) attempt {Attempt} failed", stageId, stage.Name, attempt);
            await FinishAsync(stage, attempt, StageStatus.Failed, "failed", message, CancellationToken.None);
            throw new StageFailedException($"Stage {stage.Name} (id {stageId}) failed: {message}", e);
        }
        finally
        {
            try
            {
                Directory.Delete(scratch, recursive: true);
            }
            catch (IOException)
            {
                // Scratch space is best-effort clean-up; a leftover folder is harmless and reported nowhere.
            }
        }
    }

    private async Task<(bool StillOurs, bool CancelRequested)> BeatUntilDoneAsync(StageHeartbeat heartbeat, CancellationTokenSource stop, long stageId)
    {
        var interval = options.Value.HeartbeatInterval;
        var last = (StillOurs: true, CancelRequested: false);
        while (true)
        {
            try
            {
                await Task.Delay(interval, stop.Token);
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

    private async Task<IReadOnlyDictionary<string, IReadOnlyList<ArtifactInfo>>> LoadInputsAsync(long stageId, CancellationToken ct)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var deps = await db.StageDependencies.Where(d => d.StageId == stageId)
            .Select(d => new { d.DependsOnStageId, d.DependsOnStage!.Name }).ToListAsync(ct);
        var result = new Dictionary<string, IReadOnlyList<ArtifactInfo>>(StringComparer.Ordinal);
        foreach (var d in deps)
        {
            var records = await db.Artifacts.Where(a => a.StageId == d.DependsOnStageId).OrderBy(a => a.Path).ToListAsync(ct);
            result[d.Name] = [.. records.Select(r => new ArtifactInfo(r.Path, r.Bytes, r.Sha256, r.MediaType, new Uri(r.Uri)))];
        }
        return result;
    }

    /// <summary>A succeeded stage with the same content key whose artifacts are all still intact is reused as is.</summary>
    private async Task<bool> TryReuseCachedAsync(Stage stage, string key, CancellationToken ct)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        if (await db.Runs.Where(r => r.Id == stage.RunId).Select(r => r.NoCache).SingleAsync(ct)) return false;
        var candidates = await db.Stages.AsNoTracking()
            .Where(s => s.ContentKey == key && s.Id != stage.Id && s.Status == StageStatus.Succeeded)
            .OrderByDescending(s => s.FinishedAt).Take(5).ToListAsync(ct);
        foreach (var source in candidates)
        {
            var artifacts = await db.Artifacts.AsNoTracking().Where(a => a.StageId == source.Id).ToListAsync(ct);
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
        db.Artifacts.AddRange(result.Artifacts.Select(a => new ArtifactRecord
        {
            RunId = stage.RunId,
            StageId = stage.Id,
            Path = a.Path,
            Uri = a.Uri.ToString(),
            Bytes = a.Bytes,
            Sha256 = a.Sha256,
            MediaType = a.MediaType,
            CreatedAt = now,
        }));
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

    private async Task FinishAsync(Stage stage, int attempt, StageStatus to, string reason, string? error, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var won = await StageEngine.TryTransitionAsync(db, stage.Id, attempt, StageStatus.Running, to, error is null ? reason : $"{reason}: {error}",
            s => s.SetProperty(x => x.Error, error is null ? null : StageEngine.Truncate(error, 4000)).SetProperty(x => x.FinishedAt, DateTime.UtcNow), ct: cancellationToken);
        if (won) await engine.BlockDependentsAsync(stage.Id, $"dependency '{stage.Name}' {to.ToString().ToLowerInvariant()}", cancellationToken);
        await engine.RefreshRunStatusAsync(stage.RunId, cancellationToken);
    }

    /// <summary>A failed or cancelled attempt leaves nothing behind in the store.</summary>
    private async Task DeleteOutputsAsync(StageContext context)
    {
        foreach (var a in context.Outputs)
        {
            try
            {
                await store.DeleteAsync(a.Path, CancellationToken.None);
            }
            catch (Exception e) when (e is IOException or Azure.RequestFailedException)
            {
                _log.LogWarning(e, "Could not delete {Path} of a failed attempt", a.Path);
            }
        }
    }
}

/// <summary>Thrown to Hangfire after the failure is recorded, so its dashboard shows the job as failed too.</summary>
public sealed class StageFailedException(string message, Exception inner) : Exception(message, inner);
