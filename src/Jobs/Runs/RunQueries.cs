using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Pipeline.Jobs.Engine;
using Pipeline.Jobs.RunStore;
using Pipeline.Jobs.Configuration;
using Pipeline.Stages.Artifacts;

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
        var headlines = await HeadlinesAsync(db, ids, ct);
        return [.. runs.Select(r => new RunSummary(r.Id, r.Name, r.Preset, Shown(r.Status, beats.GetValueOrDefault(r.Id)), r.CreatedAt, r.FinishedAt,
            counts.TryGetValue(r.Id, out var c) ? c.Total : 0, counts.TryGetValue(r.Id, out c) ? c.Done : 0, OverridesOf(r), headlines[r.Id]))];
    }

    /// <summary>One page of runs for the dashboard, filtered, sorted and paged in the database (hundreds of runs stay fast).</summary>
    public async Task<RunPage> PageAsync(RunListQuery query, CancellationToken ct = default)
    {
        var size = Math.Clamp(query.PageSize, 1, 200);
        var page = Math.Max(query.Page, 1);
        await using var db = await dbs.CreateDbContextAsync(ct);
        var runs = db.Runs.AsNoTracking();
        if (!string.IsNullOrWhiteSpace(query.Text))
        {
            var text = $"%{query.Text.Trim().ToLowerInvariant()}%";
            runs = runs.Where(r => EF.Functions.Like(r.Name.ToLower(), text) || (r.Preset != null && EF.Functions.Like(r.Preset.ToLower(), text)));
        }
        if (query.Status is { } status) runs = runs.Where(r => r.Status == status);
        if (query.Preset is { } preset) runs = runs.Where(r => r.Preset == preset);
        if (query.ScheduleId is { } schedule) runs = runs.Where(r => r.ScheduleId == schedule);
        var total = await runs.CountAsync(ct);
        var ids = query.Sort switch
        {
            RunSort.Oldest => await runs.OrderBy(r => r.Id).Select(r => r.Id).Skip((page - 1) * size).Take(size).ToListAsync(ct),
            RunSort.Name => await runs.OrderBy(r => r.Name).ThenByDescending(r => r.Id).Select(r => r.Id).Skip((page - 1) * size).Take(size).ToListAsync(ct),
            RunSort.Status => await runs.OrderBy(r => r.Status).ThenByDescending(r => r.Id).Select(r => r.Id).Skip((page - 1) * size).Take(size).ToListAsync(ct),
            // Durations are not comparable in SQL on both providers (SQLite keeps times as text): two narrow columns, sorted here.
            RunSort.Duration => [.. (await runs.Select(r => new { r.Id, r.CreatedAt, r.FinishedAt }).ToListAsync(ct))
                .OrderByDescending(r => (r.FinishedAt ?? DateTime.UtcNow) - r.CreatedAt).Skip((page - 1) * size).Take(size).Select(r => r.Id)],
            _ => await runs.OrderByDescending(r => r.Id).Select(r => r.Id).Skip((page - 1) * size).Take(size).ToListAsync(ct),
        };
        var rows = await db.Runs.AsNoTracking().Where(r => ids.Contains(r.Id)).ToDictionaryAsync(r => r.Id, ct);
        var scheduleIds = rows.Values.Where(r => r.ScheduleId is not null).Select(r => r.ScheduleId!.Value).Distinct().ToList();
        var schedules = await db.Schedules.Where(s => scheduleIds.Contains(s.Id)).ToDictionaryAsync(s => s.Id, s => s.Name, ct);
        var stages = (await db.Stages.AsNoTracking().Where(s => ids.Contains(s.RunId) && s.Kind != Search.SearchParams.Kind)
            .Select(s => new { s.RunId, s.Queue, s.Status, s.Progress, s.StartedAt, s.FinishedAt }).ToListAsync(ct)).ToLookup(s => s.RunId);
        var beats = await HeartbeatsAsync(db, ids, ct);
        var headlines = await HeadlinesAsync(db, ids, ct);
        var now = DateTime.UtcNow;
        return new RunPage([.. ids.Select(id =>
        {
            var r = rows[id];
            var own = stages[id].ToList();
            var done = own.Count(s => s.Status is StageStatus.Succeeded or StageStatus.Cached);
            var progress = own.Count == 0 ? 0 : own.Sum(s => StageStatuses.IsTerminal(s.Status) ? 1 : s.Status == StageStatus.Running ? s.Progress : 0) / own.Count;
            var started = own.Where(s => s.StartedAt is not null).Select(s => s.StartedAt).Min();
            var gpuHours = own.Where(s => s.Queue == "gpu" && s.Status != StageStatus.Cached && s.StartedAt is not null)
                .Sum(s => ((s.FinishedAt ?? (s.Status == StageStatus.Running ? now : s.StartedAt!.Value)) - s.StartedAt!.Value).TotalHours);
            var trigger = r.ScheduleId is { } sid ? schedules.GetValueOrDefault(sid) ?? $"schedule {sid} (removed)" : "manual";
            return new RunRow(r.Id, r.Name, r.Preset, trigger, r.ScheduleId, Shown(r.Status, beats.GetValueOrDefault(id)), own.Count, done, progress,
                r.CreatedAt, started, r.FinishedAt, (r.FinishedAt ?? now) - r.CreatedAt, gpuHours, headlines.GetValueOrDefault(id));
        })], total, page, size);
    }

    private static async Task<Dictionary<long, RunHeadline?>> HeadlinesAsync(RunStoreContext db, IReadOnlyCollection<long> ids, CancellationToken ct)
    {
        var summaries = (await db.Stages.Where(s => ids.Contains(s.RunId) && s.SummaryJson != null).OrderBy(s => s.Id)
                .Select(s => new { s.RunId, s.Name, s.Kind, s.SummaryJson }).ToListAsync(ct))
            .ToLookup(s => s.RunId);
        return ids.ToDictionary(id => id, id => Headlines.OfRun(summaries[id].Select(s => (s.Name, s.Kind, (JsonObject?)Headlines.Facts(ParseOrNull(s.SummaryJson))))));
    }

    /// <summary>
    /// Each metric of a stage as a series of at most <paramref name="maxPoints"/> points, downsampled on the server: the
    /// points are cut into buckets and each bucket keeps its lowest and highest value (in order), so spikes survive;
    /// the first and the last point are always kept.
    /// </summary>
    public async Task<IReadOnlyList<MetricSeries>> MetricSeriesAsync(long stageId, int maxPoints = 500, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var points = await db.MetricPoints.AsNoTracking().Where(m => m.StageId == stageId).OrderBy(m => m.Id)
            .Select(m => new MetricPointView(m.Id, m.StageId, m.Name, m.Step, m.Value, m.At)).ToListAsync(ct);
        return [.. points.GroupBy(p => p.Name).OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => new MetricSeries(stageId, g.Key, Downsample(g.ToList(), Math.Max(maxPoints, 4)), g.Count()))];
    }

    public static IReadOnlyList<MetricPointView> Downsample(IReadOnlyList<MetricPointView> points, int maxPoints)
    {
        if (points.Count <= maxPoints) return points;
        var buckets = (maxPoints - 2) / 2;
        var kept = new List<MetricPointView>(maxPoints) { points[0] };
        for (var b = 0; b < buckets; b++)
        {
            var from = 1 + (int)((long)b * (points.Count - 2) / buckets);
            var to = 1 + (int)((long)(b + 1) * (points.Count - 2) / buckets);
            if (to <= from) continue;
            int lo = from, hi = from;
            for (var i = from; i < to; i++)
            {
                if (points[i].Value < points[lo].Value) lo = i;
                if (points[i].Value > points[hi].Value) hi = i;
            }
            kept.Add(points[Math.Min(lo, hi)]);
            if (lo != hi) kept.Add(points[Math.Max(lo, hi)]);
        }
        kept.Add(points[^1]);
        return kept;
    }

    /// <summary>The last <paramref name="max"/> stored log lines of a stage's attempt (null: its current attempt), oldest first.</summary>
    public async Task<IReadOnlyList<LogLineView>> LogTailAsync(long stageId, int? attempt = null, int max = 500, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var which = attempt ?? await db.Stages.Where(s => s.Id == stageId).Select(s => (int?)s.Attempt).SingleOrDefaultAsync(ct)
            ?? throw EngineException.NotFound($"Stage {stageId} does not exist.");
        var lines = await db.StageLogs.AsNoTracking().Where(l => l.StageId == stageId && l.Attempt == which).OrderByDescending(l => l.Id).Take(Math.Clamp(max, 1, StageLog.TailLines))
            .Select(l => new LogLineView(l.Id, l.StageId, l.Attempt, l.At, l.Level, l.Message)).ToListAsync(ct);
        lines.Reverse();
        return lines;
    }

    /// <summary>The highest metric point and log line ids of a run's stages: where a live feed starts reading.</summary>
    public async Task<(long Metric, long Log)> CursorsAsync(long runId, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var stageIds = db.Stages.Where(s => s.RunId == runId).Select(s => s.Id);
        var metric = await db.MetricPoints.Where(m => stageIds.Contains(m.StageId)).MaxAsync(m => (long?)m.Id, ct) ?? 0;
        var log = await db.StageLogs.Where(l => l.RunId == runId).MaxAsync(l => (long?)l.Id, ct) ?? 0;
        return (metric, log);
    }

    /// <summary>A run's metric points and log lines with ids above the cursors, oldest first, at most <paramref name="max"/> of each.</summary>
    public async Task<(IReadOnlyList<MetricPointView> Metrics, IReadOnlyList<LogLineView> Logs)> AfterAsync(long runId, long metricCursor, long logCursor, int max = 5000,
        CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var stageIds = db.Stages.Where(s => s.RunId == runId).Select(s => s.Id);
        var metrics = await db.MetricPoints.AsNoTracking().Where(m => m.Id > metricCursor && stageIds.Contains(m.StageId)).OrderBy(m => m.Id).Take(max)
            .Select(m => new MetricPointView(m.Id, m.StageId, m.Name, m.Step, m.Value, m.At)).ToListAsync(ct);
        var logs = await db.StageLogs.AsNoTracking().Where(l => l.RunId == runId && l.Id > logCursor).OrderBy(l => l.Id).Take(max)
            .Select(l => new LogLineView(l.Id, l.StageId, l.Attempt, l.At, l.Level, l.Message)).ToListAsync(ct);
        return (metrics, logs);
    }

    /// <summary>
    /// The newest succeeded stage with this content key and the outputs it recorded (not its logs), or null: what a
    /// stage with that key would reuse, provided its artifacts are still intact when it runs.
    /// </summary>
    public async Task<(long StageId, IReadOnlyList<ArtifactInfo> Outputs)?> CachedAsync(string contentKey, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var source = await db.Stages.AsNoTracking().Where(s => s.ContentKey == contentKey && s.Status == StageStatus.Succeeded)
            .OrderByDescending(s => s.FinishedAt).Select(s => new { s.Id, s.RunId }).FirstOrDefaultAsync(ct);
        if (source is null) return null;
        var logs = ArtifactPaths.LogFolder(source.RunId);
        var outputs = await db.Artifacts.AsNoTracking().Where(a => a.StageId == source.Id && !a.Path.StartsWith(logs)).OrderBy(a => a.Path).ToListAsync(ct);
        return (source.Id, [.. outputs.Select(r => new ArtifactInfo(r.Path, r.Bytes, r.Sha256, r.MediaType, new Uri(r.Uri)))]);
    }

    /// <summary>How the run of a stage was launched: what "run again from this stage" launches again.</summary>
    public async Task<(string StageName, string SpecJson, string? Preset, IReadOnlyList<string> Overrides)> LaunchOfStageAsync(long stageId, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var found = await db.Stages.AsNoTracking().Where(s => s.Id == stageId).Select(s => new { s.Name, s.Run }).SingleOrDefaultAsync(ct)
            ?? throw EngineException.NotFound($"Stage {stageId} does not exist.");
        return (found.Name, found.Run!.SpecJson, found.Run.Preset, OverridesOf(found.Run));
    }

    /// <summary>One artifact record by id (downloads), or null.</summary>
    public async Task<ArtifactView?> GetArtifactAsync(long artifactId, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        return await db.Artifacts.AsNoTracking().Where(a => a.Id == artifactId).Select(a => View(a)).SingleOrDefaultAsync(ct);
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
        var logs = ArtifactPaths.LogFolder(runId);
        return new RunDetail(run.Id, run.Name, run.Preset, Shown(run.Status, beats.GetValueOrDefault(runId)), run.CreatedAt, run.FinishedAt, run.NoCache,
            [.. stages.Select(s => new StageDetail(
                s.Id, s.Name, s.Kind, s.Queue, s.Status, s.Attempt, s.Progress, s.ProgressMessage, s.Worker, s.ContentKey, s.CachedFromStageId,
                s.Error, s.StartedAt, s.FinishedAt, s.HeartbeatAt, [.. s.DependsOn.Select(d => d.DependsOnStage!.Name)],
                ParseOrNull(s.SummaryJson),
                [.. artifacts.Where(a => a.StageId == s.Id && !a.Path.StartsWith(logs, StringComparison.Ordinal)).Select(View)],
                [.. history.Where(h => h.StageId == s.Id).Select(h => new TransitionView(h.Attempt, h.From, h.To, h.At, h.Reason))],
                ParseOrNull(s.ParamsJson))
            {
                Logs = [.. artifacts.Where(a => a.StageId == s.Id && a.Path.StartsWith(logs, StringComparison.Ordinal)).Select(View)],
            })],
            OverridesOf(run));
    }

    /// <summary>Each run of <paramref name="runIds"/>, in that order; the first id that was never issued is a not-found error.</summary>
    public async Task<IReadOnlyList<RunDetail>> GetManyAsync(IEnumerable<long> runIds, CancellationToken ct = default)
    {
        var runs = new List<RunDetail>();
        foreach (var id in runIds) runs.Add(await GetAsync(id, ct) ?? throw EngineException.NotFound($"Run {id} does not exist."));
        return runs;
    }

    private static ArtifactView View(ArtifactRecord a) => new(a.Id, a.Path, a.Bytes, a.Sha256, a.MediaType, a.Uri);

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
    JsonNode? Params)
{
    /// <summary>The full log of each attempt that ran (<see cref="Engine.StageLog"/>), oldest first; not among its outputs.</summary>
    public IReadOnlyList<ArtifactView> Logs { get; init; } = [];
}

public sealed record ArtifactView(long Id, string Path, long Bytes, string Sha256, string MediaType, string Uri);

public sealed record TransitionView(int Attempt, StageStatus? From, StageStatus To, DateTime At, string Reason);
