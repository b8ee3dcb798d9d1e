using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Pipeline.Jobs.Engine;
using Pipeline.Jobs.RunStore;
using Pipeline.Jobs.Configuration;

namespace Pipeline.Jobs.Runs;

/// <summary>Read models of runs, shared by the CLI (text and --json) and the web API.</summary>
public sealed class RunQueries(IDbContextFactory<RunStoreContext> dbs, IOptions<PipelineOptions> options)
{
    /// <summary>Running stages whose heartbeat is older than the timeout, and those still beating, per run.</summary>
    private async Task<Dictionary<long, (int Stale, int Live)>> HeartbeatsAsync(RunStoreContext db, IReadOnlyCollection<long> runIds, CancellationToken ct)
    {
        var staleBefore = DateTime.UtcNow - options.Value.HeartbeatTimeout;
        // A search runs in the engine and has no heartbeat; its trials' stages do.
        var running = await db.Stages.Where(s => runIds.Contains(s.RunId) && s.Status == StageStatus.Running && s.Kind != Search.SearchParams.Kind)
            .Select(s => new { s.RunId, s.HeartbeatAt }).ToListAsync(ct);
        return running.GroupBy(s => s.RunId).ToDictionary(g => g.Key, g => (g.Count(s => s.HeartbeatAt < staleBefore), g.Count(s => !(s.HeartbeatAt < staleBefore))));
    }

    private static RunStatus Shown(RunStatus stored, (int Stale, int Live) beats) =>
        stored is RunStatus.Running or RunStatus.Pending && beats is { Stale: > 0, Live: 0 } ? RunStatus.Interrupted : stored;

    public async Task<IReadOnlyList<RunSummary>> ListAsync(int limit, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var runs = await db.Runs.AsNoTracking().OrderByDescending(r => r.Id).Take(limit).ToListAsync(ct);
        var ids = runs.Select(r => r.Id).ToList();
        var counts = await db.Stages.Where(s => ids.Contains(s.RunId)).GroupBy(s => s.RunId)
            .Select(g => new { RunId = g.Key, Total = g.Count(), Done = g.Count(s => s.Status == StageStatus.Succeeded || s.Status == StageStatus.Cached) })
            .ToDictionaryAsync(x => x.RunId, ct);
        var beats = await HeartbeatsAsync(db, ids, ct);
        var summaries = (await db.Stages.Where(s => ids.Contains(s.RunId) && s.SummaryJson != null).OrderBy(s => s.Id)
                .Select(s => new { s.RunId, s.Name, s.Kind, s.SummaryJson }).ToListAsync(ct))
            .ToLookup(s => s.RunId);
        return [.. runs.Select(r => new RunSummary(r.Id, r.Name, r.Preset, Shown(r.Status, beats.GetValueOrDefault(r.Id)), r.CreatedAt, r.FinishedAt,
            counts.TryGetValue(r.Id, out var c) ? c.Total : 0, counts.TryGetValue(r.Id, out c) ? c.Done : 0, OverridesOf(r),
            Headlines.OfRun(summaries[r.Id].Select(s => (s.Name, s.Kind, (JsonObject?)Headlines.Facts(ParseOrNull(s.SummaryJson)))))))];
    }

    /// <summary>One page of runs for the dashboard, filtered and sorted in the database (hundreds of runs stay fast).</summary>
    public Task<RunPage> PageAsync(RunListQuery query, CancellationToken ct = default) => throw new NotImplementedException();

    /// <summary>Each metric of a stage as a series of at most <paramref name="maxPoints"/> points, downsampled on the server.</summary>
    public Task<IReadOnlyList<MetricSeries>> MetricSeriesAsync(long stageId, int maxPoints = 500, CancellationToken ct = default) => throw new NotImplementedException();

    /// <summary>The last <paramref name="max"/> stored log lines of a stage's attempt (null: its current attempt), oldest first.</summary>
    public Task<IReadOnlyList<LogLineView>> LogTailAsync(long stageId, int? attempt = null, int max = 500, CancellationToken ct = default) => throw new NotImplementedException();

    /// <summary>One artifact record by id (downloads), or null.</summary>
    public async Task<ArtifactView?> GetArtifactAsync(long artifactId, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        return await db.Artifacts.AsNoTracking().Where(a => a.Id == artifactId)
            .Select(a => new ArtifactView(a.Id, a.Path, a.Bytes, a.Sha256, a.MediaType, a.Uri)).SingleOrDefaultAsync(ct);
    }

    /// <summary>What the run store is and how many runs it holds: a health check's question.</summary>
    public async Task<string> DescribeStoreAsync(CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        return $"{db.Database.ProviderName}: {await db.Runs.CountAsync(ct)} runs";
    }

    public async Task<long> RunOfStageAsync(long stageId, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        return await db.Stages.Where(s => s.Id == stageId).Select(s => (long?)s.RunId).SingleOrDefaultAsync(ct)
            ?? throw EngineException.NotFound($"Stage {stageId} does not exist.");
    }

    public async Task<RunDetail?> GetAsync(long runId, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var run = await db.Runs.AsNoTracking().SingleOrDefaultAsync(r => r.Id == runId, ct);
        if (run is null) return null;
        var stages = await db.Stages.AsNoTracking().Where(s => s.RunId == runId).Include(s => s.DependsOn).ThenInclude(d => d.DependsOnStage)
            .OrderBy(s => s.Id).ToListAsync(ct);
        var artifacts = await db.Artifacts.AsNoTracking().Where(a => a.RunId == runId).OrderBy(a => a.Path).ToListAsync(ct);
        var history = await db.StageTransitions.AsNoTracking().Where(t => stages.Select(s => s.Id).Contains(t.StageId)).OrderBy(t => t.Id).ToListAsync(ct);
        var beats = await HeartbeatsAsync(db, [runId], ct);
        return new RunDetail(run.Id, run.Name, run.Preset, Shown(run.Status, beats.GetValueOrDefault(runId)), run.CreatedAt, run.FinishedAt, run.NoCache,
            [.. stages.Select(s => new StageDetail(
                s.Id, s.Name, s.Kind, s.Queue, s.Status, s.Attempt, s.Progress, s.ProgressMessage, s.Worker, s.ContentKey, s.CachedFromStageId,
                s.Error, s.StartedAt, s.FinishedAt, s.HeartbeatAt, [.. s.DependsOn.Select(d => d.DependsOnStage!.Name)],
                ParseOrNull(s.SummaryJson),
                [.. artifacts.Where(a => a.StageId == s.Id).Select(a => new ArtifactView(a.Id, a.Path, a.Bytes, a.Sha256, a.MediaType, a.Uri))],
                [.. history.Where(h => h.StageId == s.Id).Select(h => new TransitionView(h.Attempt, h.From, h.To, h.At, h.Reason))],
                ParseOrNull(s.ParamsJson)))],
            OverridesOf(run));
    }

    /// <summary>Each run of <paramref name="runIds"/>, in that order; the first id that was never issued is a not-found error.</summary>
    public async Task<IReadOnlyList<RunDetail>> GetManyAsync(IEnumerable<long> runIds, CancellationToken ct = default)
    {
        var runs = new List<RunDetail>();
        foreach (var id in runIds) runs.Add(await GetAsync(id, ct) ?? throw EngineException.NotFound($"Run {id} does not exist."));
        return runs;
    }

    private static JsonNode? ParseOrNull(string? json) => json is null ? null : JsonNode.Parse(json);

    private static IReadOnlyList<string> OverridesOf(Run run) =>
        run.OverridesJson is null ? [] : JsonSerializer.Deserialize<List<string>>(run.OverridesJson) ?? [];
}

/// <summary>A run in a list: <c>Overrides</c> are the <c>key.path=value</c> overrides it was launched with (CLI --set, API
/// "set"), <c>Headline</c> its best headline figure (<see cref="Headlines.OfRun"/>), null while no stage has reported one.</summary>
public sealed record RunSummary(long Id, string Name, string? Preset, RunStatus Status, DateTime CreatedAt, DateTime? FinishedAt, int Stages, int StagesDone,
    IReadOnlyList<string> Overrides, RunHeadline? Headline);

public sealed record RunDetail(long Id, string Name, string? Preset, RunStatus Status, DateTime CreatedAt, DateTime? FinishedAt, bool NoCache, IReadOnlyList<StageDetail> Stages,
    IReadOnlyList<string> Overrides)
{
    /// <summary>Ended for good; an interrupted run is not (a retry or a worker's reconciler continues it).</summary>
    public bool IsFinished => Status is RunStatus.Succeeded or RunStatus.Failed or RunStatus.Cancelled;
}

public sealed record StageDetail(
    long Id, string Name, string Kind, string Queue, StageStatus Status, int Attempt, double Progress, string? ProgressMessage, string? Worker,
    string? ContentKey, long? CachedFromStageId, string? Error, DateTime? StartedAt, DateTime? FinishedAt, DateTime? HeartbeatAt,
    IReadOnlyList<string> DependsOn, JsonNode? Summary, IReadOnlyList<ArtifactView> Artifacts, IReadOnlyList<TransitionView> History,
    JsonNode? Params);

public sealed record ArtifactView(long Id, string Path, long Bytes, string Sha256, string MediaType, string Uri);

public sealed record TransitionView(int Attempt, StageStatus? From, StageStatus To, DateTime At, string Reason);
