using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging;
using Pipeline.Jobs.RunSpecs;
using Pipeline.Jobs.RunStore;
using Pipeline.Jobs.Search;
using Pipeline.Stages;
using Pipeline.Stages.Artifacts;
using Pipeline.Stages.Execution;
using Pipeline.Stages.Sweeps;

namespace Pipeline.Jobs.Engine;

/// <summary>
/// Runs the <c>search</c> stages (no job of their own). A search is Running from the moment its dependencies are done
/// until its last trial ends; every step is one <see cref="AdvanceAsync"/>: record the results of trials whose stages
/// ended (in that order, which is the history the sampler sees), propose new trials up to <c>parallel</c> running and
/// <c>budget</c> in all — each proposal and its stages written in one transaction — and, when nothing runs and nothing
/// is left to propose, write <c>trials.json</c> and end the search. The engine advances a run's searches whenever it
/// refreshes the run's status (after every stage transition), and the reconciler on every pass, so a crash between a
/// trial ending and the next proposal loses nothing. Advances of one search are serialised (an advisory lock across
/// processes, a semaphore within one), and each is idempotent: no trial is proposed twice or lost.
/// </summary>
public sealed class SearchCoordinator(IDbContextFactory<RunStoreContext> dbs, IArtifactStore store, StageEngine engine, ILogger log)
{
    private static readonly SemaphoreSlim Gate = new(1, 1);

    /// <summary>The name of trial <paramref name="number"/>'s first stage; its sweep adds "-sweep".</summary>
    public static string TrialStageName(string search, int number) => $"{search}-t{number:00}";

    private const string SweepSuffix = "-sweep";

    /// <summary>Advances every running search of the run.</summary>
    public async Task AdvanceRunAsync(long runId, CancellationToken ct)
    {
        List<long> searches;
        await using (var db = await dbs.CreateDbContextAsync(ct))
        {
            searches = await db.Stages.Where(s => s.RunId == runId && s.Kind == SearchParams.Kind && s.Status == StageStatus.Running).Select(s => s.Id).ToListAsync(ct);
        }
        foreach (var id in searches) await AdvanceAsync(id, ct);
    }

    /// <summary>Advances every running search in the store (the reconciler's pass); returns how many moved on.</summary>
    public async Task<int> AdvanceAllAsync(CancellationToken ct)
    {
        List<long> searches;
        await using (var db = await dbs.CreateDbContextAsync(ct))
        {
            searches = await db.Stages.Where(s => s.Kind == SearchParams.Kind && s.Status == StageStatus.Running).Select(s => s.Id).ToListAsync(ct);
        }
        var advanced = 0;
        foreach (var id in searches)
        {
            if (await AdvanceAsync(id, ct)) advanced++;
        }
        return advanced;
    }

    /// <summary>What one advance decided, acted on after its transaction committed.</summary>
    private sealed record Step(long RunId, bool Proposed, IReadOnlyList<long> Cancel, bool Ended, string? Failure, string SearchName, bool Recorded = false);

    /// <summary>One step of the search (see the class comment); returns whether it recorded, proposed or ended anything.</summary>
    public async Task<bool> AdvanceAsync(long searchStageId, CancellationToken ct)
    {
        Step? step;
        await Gate.WaitAsync(ct);
        try
        {
            step = await AdvanceLockedAsync(searchStageId, ct);
        }
        finally
        {
            Gate.Release();
        }
        if (step is null) return false;
        foreach (var id in step.Cancel) await engine.CancelAsync(id, $"search '{step.SearchName}' stopped: {step.Failure}", ct);
        if (step.Ended && step.Failure is not null) await engine.BlockDependentsAsync(searchStageId, $"dependency '{step.SearchName}' failed", ct);
        if (step.Proposed || step.Ended) await engine.PromoteReadyAsync(step.RunId, ct);
        return true;
    }

    private async Task<Step?> AdvanceLockedAsync(long searchStageId, CancellationToken ct)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        await RunStoreLocks.LockAsync(db, $"5ea4c400{searchStageId:x8}", ct);
        var search = await db.Stages.AsNoTracking().SingleAsync(s => s.Id == searchStageId, ct);
        if (search.Status != StageStatus.Running) return null;
        var p = (SearchParams)StageCatalog.Get(SearchParams.Kind).DeserializeParams(JsonDocument.Parse(search.ParamsJson).RootElement);

        var trials = await db.SearchTrials.Where(t => t.SearchStageId == searchStageId).OrderBy(t => t.Number).ToListAsync(ct);
        var trialIds = trials.Select(t => t.Id).ToList();
        var stages = (await db.Stages.AsNoTracking().Where(s => s.TrialId != null && trialIds.Contains(s.TrialId.Value)).ToListAsync(ct))
            .ToLookup(s => s.TrialId!.Value);

        var order = trials.Max(t => t.Order) ?? -1;
        var recordedAny = false;
        foreach (var trial in trials.Where(t => t.Status == SearchTrialStatus.Running))
        {
            if (Outcome(p, search.Name, trial, stages[trial.Id].ToList()) is not { } outcome) continue;
            (trial.Status, trial.Objective, trial.PrunedAtStep, trial.Error) = outcome;
            trial.Order = ++order;
            trial.FinishedAt = DateTime.UtcNow;
            recordedAny = true;
            log.LogInformation("Search {Search} trial {Trial} {Status}: {Metric} {Objective}", search.Name, trial.Number, trial.Status, p.Objective.Metric, trial.Objective);
        }
        await db.SaveChangesAsync(ct);

        var running = trials.Where(t => t.Status == SearchTrialStatus.Running).ToList();
        var failed = trials.Count(t => t.Status == SearchTrialStatus.Failed);
        if (failed > p.AllowFailures)
        {
            var failure = $"{failed} trial(s) failed, more than allow_failures ({p.AllowFailures}); the first: {trials.First(t => t.Status == SearchTrialStatus.Failed).Error}";
            var cancel = running.SelectMany(t => stages[t.Id]).Where(s => !StageStatuses.IsTerminal(s.Status)).Select(s => s.Id).ToList();
            await EndAsync(db, search, p, trials, stages, failure, ct);
            await tx.CommitAsync(ct);
            return new Step(search.RunId, false, cancel, true, failure, search.Name);
        }

        var proposed = false;
        var exhausted = false;
        var sampler = p.CreateSampler();
        while (trials.Count < p.Budget && running.Count < p.Parallel)
        {
            var history = trials.Where(t => t.Order is not null).OrderBy(t => t.Order).Select(ToTrial).ToList();
            var next = sampler.Propose(history, [.. running.Select(t => Assignment(t.AssignmentJson))]);
            if (next is null)
            {
                exhausted = true;
                break;
            }
            var trial = await AddTrialAsync(db, search, p, trials.Count, next, ct);
            trials.Add(trial);
            running.Add(trial);
            proposed = true;
        }
        if (trials.Count >= p.Budget) exhausted = true;

        if (running.Count == 0 && exhausted)
        {
            var failure = trials.Any(t => t.Status == SearchTrialStatus.Completed) ? null
                : $"none of its {trials.Count} trial(s) completed ({string.Join(", ", trials.GroupBy(t => t.Status).Select(g => $"{g.Count()} {g.Key.ToString().ToLowerInvariant()}"))})";
            stages = (await db.Stages.AsNoTracking().Where(s => s.TrialId != null && trialIds.Contains(s.TrialId.Value)).ToListAsync(ct)).ToLookup(s => s.TrialId!.Value);
            await EndAsync(db, search, p, trials, stages, failure, ct);
            await tx.CommitAsync(ct);
            return new Step(search.RunId, proposed, [], true, failure, search.Name);
        }
        await tx.CommitAsync(ct);
        return proposed || recordedAny ? new Step(search.RunId, proposed, [], false, null, search.Name, recordedAny) : null;
    }

    /// <summary>
    /// A trial's result once its stages say it has one: completed with its objective (the metric from the summary of the
    /// objective's stage), pruned at a rung, failed (a stage failed, or the metric is missing) or cancelled; null while
    /// it still runs.
    /// </summary>
    private static (SearchTrialStatus, double?, long?, string?)? Outcome(SearchParams p, string search, SearchTrial trial, List<Stage> stages)
    {
        var first = stages.SingleOrDefault(s => s.Name == TrialStageName(search, trial.Number));
        var sweep = stages.SingleOrDefault(s => s.Name == TrialStageName(search, trial.Number) + SweepSuffix);
        if (first is null) return (SearchTrialStatus.Failed, null, null, "its stage is missing from the run");
        if (stages.FirstOrDefault(s => s.Status == StageStatus.Failed) is { } failedStage) return (SearchTrialStatus.Failed, null, null, $"{failedStage.Name}: {failedStage.Error}");
        if (first.Status == StageStatus.Pruned)
        {
            var summary = ParseObject(first.SummaryJson);
            return (SearchTrialStatus.Pruned, Number(summary?[p.Objective.Metric]), (long?)Number(summary?["step"]), null);
        }
        if (stages.Any(s => s.Status is StageStatus.Cancelled or StageStatus.Blocked)) return (SearchTrialStatus.Cancelled, null, null, "cancelled");
        var objectiveStage = p.Objective.Of == "sweep" ? sweep : first;
        if (objectiveStage is null || !StageStatuses.IsDone(objectiveStage.Status) || stages.Any(s => !StageStatuses.IsTerminal(s.Status))) return null;
        var facts = ParseObject(objectiveStage.SummaryJson);
        if (Number(facts?[p.Objective.Metric]) is not { } value)
        {
            return (SearchTrialStatus.Failed, null, null,
                $"objective.metric '{p.Objective.Metric}' is not a number in the summary of {objectiveStage.Name} (its fields: {string.Join(", ", facts?.Select(f => f.Key) ?? [])})");
        }
        return (SearchTrialStatus.Completed, value, null, null);
    }

    private async Task<SearchTrial> AddTrialAsync(RunStoreContext db, Stage search, SearchParams p, int number, Assignment assignment, CancellationToken ct)
    {
        var now = DateTime.UtcNow;
        var trial = new SearchTrial
        {
            SearchStageId = search.Id,
            Number = number,
            AssignmentJson = AssignmentJson(assignment).ToJsonString(),
            Status = SearchTrialStatus.Running,
            ProposedAt = now,
        };
        db.SearchTrials.Add(trial);
        await db.SaveChangesAsync(ct);

        var dependencies = await db.StageDependencies.Where(d => d.StageId == search.Id).Select(d => d.DependsOnStageId).ToListAsync(ct);
        var reason = $"proposed by search '{search.Name}' as trial {number} ({assignment})";
        var first = NewStage(search, trial, TrialStageName(search.Name, number), StageCatalog.Get(p.Trial.Kind), p.TrialParams(assignment), reason, now);
        first.DependsOn = [.. dependencies.Select(d => new StageDependency { DependsOnStageId = d })];
        db.Stages.Add(first);
        if (p.Trial.Sweep is { } sweepParams)
        {
            var sweep = NewStage(search, trial, first.Name + SweepSuffix, StageCatalog.Get(SearchParams.SweepKind), sweepParams, reason, now);
            sweep.DependsOn = [new StageDependency { DependsOnStage = first }, .. dependencies.Select(d => new StageDependency { DependsOnStageId = d })];
            db.Stages.Add(sweep);
        }
        await db.SaveChangesAsync(ct);
        db.ChangeTracker.Clear();
        log.LogInformation("Search {Search} proposed trial {Trial}: {Assignment}", search.Name, number, assignment.ToString());
        return trial;
    }

    private static Stage NewStage(Stage search, SearchTrial trial, string name, StageKind kind, JsonObject parameters, string reason, DateTime now)
    {
        var canonical = kind.Canonical(kind.DeserializeParams(JsonSerializer.SerializeToElement(parameters, PipelineJson.Options)));
        return new Stage
        {
            RunId = search.RunId,
            Name = name,
            Kind = kind.Kind,
            Queue = kind.Queue,
            ParamsJson = canonical,
            CreatedAt = now,
            TrialId = trial.Id,
            History = [new StageTransition { To = StageStatus.Pending, At = now, Attempt = 1, Reason = StageEngine.Truncate(reason, 2000) }],
        };
    }

    /// <summary>Writes trials.json and ends the search: Succeeded, or Failed with <paramref name="failure"/>.</summary>
    private async Task EndAsync(RunStoreContext db, Stage search, SearchParams p, List<SearchTrial> trials, ILookup<long, Stage> stages, string? failure, CancellationToken ct)
    {
        var artifactsByStage = (await db.Artifacts.AsNoTracking().Where(a => a.RunId == search.RunId).ToListAsync(ct))
            .Where(a => stages.Any(g => g.Any(s => s.Id == a.StageId))).ToLookup(a => a.StageId);
        var record = new SearchTrials
        {
            Search = search.Name,
            Strategy = JsonNamingPolicy.SnakeCaseLower.ConvertName(p.Strategy.ToString()),
            Seed = p.Seed,
            Budget = p.Budget,
            Parallel = p.Parallel,
            Objective = p.Objective,
            Space = JsonSerializer.SerializeToNode(p.Space, PipelineJson.Options)!.AsObject(),
            Trials = [.. trials.Select(t => new SearchTrialRecord
            {
                Number = t.Number,
                Status = t.Status.ToString().ToLowerInvariant(),
                Assignment = JsonNode.Parse(t.AssignmentJson)!.AsObject(),
                Objective = t.Objective,
                PrunedAtStep = t.PrunedAtStep,
                Order = t.Order,
                Error = t.Error,
                WallSeconds = stages[t.Id].Where(s => s.StartedAt is not null && s.FinishedAt is not null).Sum(s => (s.FinishedAt!.Value - s.StartedAt!.Value).TotalSeconds) is var w && w > 0 ? Math.Round(w, 2) : null,
                Stages = [.. stages[t.Id].OrderBy(s => s.Id).Select(s => new SearchTrialStage
                {
                    Name = s.Name,
                    Role = s.Name.EndsWith(SweepSuffix, StringComparison.Ordinal) ? "sweep" : "train",
                    Kind = s.Kind,
                    Status = s.Status.ToString().ToLowerInvariant(),
                    Params = JsonNode.Parse(s.ParamsJson)!.AsObject(),
                    Summary = ParseObject(s.SummaryJson),
                    Artifacts = [.. artifactsByStage[s.Id].OrderBy(a => a.Path).Select(a => new ArtifactRef(a.Path, a.Sha256, a.Bytes))],
                })],
            })],
        };
        var key = ContentKeys.Compute(search.Kind, StageCatalog.Get(search.Kind).Version, $"{search.Name}\n{search.ParamsJson}", new Dictionary<string, IReadOnlyList<ArtifactInfo>>());
        var path = ArtifactPaths.StageFolder(search.RunId, search.Kind, key) + SearchTrials.FileName;
        var bytes = JsonSerializer.SerializeToUtf8Bytes(record, PipelineJson.Options);
        var info = await store.PutAsync(path, new MemoryStream(bytes, writable: false), ArtifactPaths.MediaTypeFor(path), ct);
        await db.Artifacts.Where(a => a.StageId == search.Id).ExecuteDeleteAsync(ct);
        db.Artifacts.Add(ArtifactRecord.Of(search, info, DateTime.UtcNow));
        await db.SaveChangesAsync(ct);

        var completed = trials.Where(t => t.Status == SearchTrialStatus.Completed && t.Objective is not null).ToList();
        var best = completed.Count == 0 ? null : p.Direction == ObjectiveDirection.Maximize ? completed.MaxBy(t => t.Objective) : completed.MinBy(t => t.Objective);
        var summary = new JsonObject
        {
            ["trials"] = trials.Count,
            ["completed"] = completed.Count,
            ["pruned"] = trials.Count(t => t.Status == SearchTrialStatus.Pruned),
            ["failed"] = trials.Count(t => t.Status == SearchTrialStatus.Failed),
            ["best_trial"] = best?.Number,
            [$"best_{p.Objective.Metric}"] = best?.Objective,
        };
        var to = failure is null ? StageStatus.Succeeded : StageStatus.Failed;
        await StageEngine.TryTransitionAsync(db, search.Id, search.Attempt, StageStatus.Running, to,
            failure is null ? $"all {trials.Count} trials ended" : $"failed: {failure}",
            s => s.SetProperty(x => x.SummaryJson, summary.ToJsonString()).SetProperty(x => x.ContentKey, key).SetProperty(x => x.Progress, 1).SetProperty(x => x.FinishedAt, DateTime.UtcNow)
                  .SetProperty(x => x.Error, failure == null ? null : StageEngine.Truncate(failure, 4000)), ct: ct);
        log.LogInformation("Search {Search} ended {Status}: {Trials} trials, best {Best}", search.Name, to, trials.Count, best?.Number);
    }

    /// <summary>
    /// Records a trial's value at a rung and decides whether it goes on (successive halving against the values recorded
    /// at that rung before it). A report repeated by a resumed attempt gets the answer recorded the first time.
    /// </summary>
    public async Task<bool> ReportRungAsync(long trialId, long step, double value, CancellationToken ct)
    {
        await Gate.WaitAsync(ct);
        try
        {
            await using var db = await dbs.CreateDbContextAsync(ct);
            await using var tx = await db.Database.BeginTransactionAsync(ct);
            var trial = await db.SearchTrials.AsNoTracking().SingleAsync(t => t.Id == trialId, ct);
            await RunStoreLocks.LockAsync(db, $"5ea4c400{trial.SearchStageId:x8}", ct);
            if (await db.TrialRungs.AsNoTracking().SingleOrDefaultAsync(r => r.TrialId == trialId && r.Step == step, ct) is { } earlier) return earlier.Continued;
            var p = await ParamsOfAsync(db, trial.SearchStageId, ct);
            var recorded = await db.TrialRungs.Where(r => r.SearchStageId == trial.SearchStageId && r.Step == step).OrderBy(r => r.Id).Select(r => r.Value).ToListAsync(ct);
            var go = p.Pruning!.ShouldContinue(recorded, value, p.Direction);
            db.TrialRungs.Add(new TrialRung { SearchStageId = trial.SearchStageId, TrialId = trialId, Step = step, Value = value, Continued = go, At = DateTime.UtcNow });
            await db.SaveChangesAsync(ct);
            await tx.CommitAsync(ct);
            log.LogInformation("Trial {Trial} at rung step {Step}: {Value} against {Count} earlier value(s): {Decision}", trial.Number, step, value, recorded.Count, go ? "continues" : "pruned");
            return go;
        }
        finally
        {
            Gate.Release();
        }
    }

    /// <summary>The pruning port for a trial stage, or null when the stage is no trial or its search does not prune.</summary>
    public async Task<ITrialPruning?> PruningForAsync(long? trialId, CancellationToken ct)
    {
        if (trialId is not { } id) return null;
        await using var db = await dbs.CreateDbContextAsync(ct);
        var searchStageId = await db.SearchTrials.Where(t => t.Id == id).Select(t => t.SearchStageId).SingleAsync(ct);
        var p = await ParamsOfAsync(db, searchStageId, ct);
        return p.Pruning is { } pruning ? new Port(this, id, [.. pruning.Rungs().Select(r => (long)r)], p.Objective.Metric) : null;
    }

    private sealed class Port(SearchCoordinator coordinator, long trialId, IReadOnlyList<long> rungs, string metric) : ITrialPruning
    {
        public IReadOnlyList<long> Rungs => rungs;
        public string Metric => metric;
        public Task<bool> ShouldContinueAsync(long step, double value, CancellationToken ct) => coordinator.ReportRungAsync(trialId, step, value, ct);
    }

    private static async Task<SearchParams> ParamsOfAsync(RunStoreContext db, long searchStageId, CancellationToken ct)
    {
        var json = await db.Stages.Where(s => s.Id == searchStageId).Select(s => s.ParamsJson).SingleAsync(ct);
        return (SearchParams)StageCatalog.Get(SearchParams.Kind).DeserializeParams(JsonDocument.Parse(json).RootElement);
    }

    private static Trial ToTrial(SearchTrial t) => new(Assignment(t.AssignmentJson), t.Status switch
    {
        SearchTrialStatus.Completed => TrialStatus.Completed,
        SearchTrialStatus.Pruned => TrialStatus.Pruned,
        SearchTrialStatus.Running => TrialStatus.Running,
        _ => TrialStatus.Failed,
    }, t.Objective, t.PrunedAtStep is { } s ? (int)s : null);

    private static JsonObject AssignmentJson(Assignment a)
    {
        var o = new JsonObject();
        foreach (var (path, value) in a) o[path] = value.DeepClone();
        return o;
    }

    private static Assignment Assignment(string json)
    {
        var a = new Assignment();
        foreach (var (path, value) in JsonNode.Parse(json)!.AsObject()) a[path] = value!.DeepClone();
        return a;
    }

    private static JsonObject? ParseObject(string? json) => json is null ? null : JsonNode.Parse(json) as JsonObject;

    private static double? Number(JsonNode? node) =>
        node is JsonValue v && v.GetValueKind() == JsonValueKind.Number ? v.GetValue<double>() : null;
}
