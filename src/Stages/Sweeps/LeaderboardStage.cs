using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Mediator;
using Microsoft.Extensions.Logging;
using Pipeline.Stages.Artifacts;
using Pipeline.Stages.Execution;
using Pipeline.Stages.Models.Checkpoints;

namespace Pipeline.Stages.Sweeps;

/// <summary>
/// The leaderboard of a search: its trials ranked by the objective, with each trial's parameter count and model spec read
/// from its train stage's artifacts, the Pareto front of objective against parameter count, and the objective against
/// every searched parameter.
/// </summary>
[Stage("leaderboard", StageQueues.Cpu, 1)]
public sealed record LeaderboardStage(LeaderboardParams Params, StageContext Context) : IStageRequest<LeaderboardParams>;

/// <summary>
/// Reads <c>trials.json</c> (a damaged one fails the stage, naming it), then per trial its train stage's
/// <c>metrics.json</c> (the parameter count; the stage summary's when it wrote none, as a pruned trial does) and
/// <c>model.safetensors.json</c> (the model spec). One trial's unreadable artifact leaves its cell empty with a warning,
/// logged and kept in <c>leaderboard.json</c>; it never fails the leaderboard.
/// </summary>
public sealed class LeaderboardHandler : IRequestHandler<LeaderboardStage, StageResult>
{
    public const string JsonFile = "leaderboard.json";
    public const string CsvFile = "leaderboard.csv";
    public const string MetricsFile = "metrics.json";
    public const string SpecsFolder = "specs/";

    public async ValueTask<StageResult> Handle(LeaderboardStage request, CancellationToken cancellationToken)
    {
        var (p, context) = (request.Params, request.Context);
        var ct = cancellationToken;
        var (dependency, info) = ChooseSearch(p, context);
        var trials = await ReadTrialsAsync(context, dependency, info, ct);

        var warnings = new List<string>();
        var width = Math.Max(2, trials.Trials.Select(t => t.Number).DefaultIfEmpty(0).Max().ToString(CultureInfo.InvariantCulture).Length);
        var rows = new List<LeaderboardRow>();
        var specs = new List<(string File, JsonNode Spec)>();
        foreach (var trial in trials.Trials)
        {
            var read = await ReadTrialAsync(context, trial, warnings, ct);
            var specFile = read.Spec is null ? null : $"{SpecsFolder}trial-{trial.Number.ToString("D" + width, CultureInfo.InvariantCulture)}.json";
            if (read.Spec is { } spec) specs.Add((specFile!, spec));
            rows.Add(new LeaderboardRow
            {
                Trial = trial.Number,
                Status = trial.Status,
                Objective = trial.Objective,
                PrunedAtStep = trial.PrunedAtStep,
                Parameters = read.Parameters,
                WallSeconds = trial.WallSeconds,
                Assignment = (JsonObject)trial.Assignment.DeepClone(),
                Error = trial.Error,
                Stages = [.. trial.Stages.Select(s => s.Name)],
                Model = (read.Spec as JsonObject)?["name"] is JsonValue name && name.GetValueKind() == JsonValueKind.String ? name.GetValue<string>() : null,
                SpecFile = specFile,
            });
            context.Progress.Report(0.8 * rows.Count / trials.Trials.Count, $"trial {rows.Count}/{trials.Trials.Count}");
        }

        var objective = new LeaderboardObjective(trials.Objective.Of, trials.Objective.Metric, trials.Objective.Direction);
        var ranked = Leaderboard.Rank(rows, objective.Maximize);
        var counts = Leaderboard.Statuses.Concat(ranked.Select(r => r.Status)).Distinct()
            .ToDictionary(s => s, s => ranked.Count(r => r.Status == s));
        var board = new Leaderboard
        {
            Search = trials.Search,
            Strategy = trials.Strategy,
            Objective = objective,
            Counts = counts,
            Best = ranked.FirstOrDefault(r => r.Rank == 1),
            Searched = [.. trials.Space.Select(kv => kv.Key).Concat(trials.Trials.SelectMany(t => t.Assignment.Select(kv => kv.Key))).Distinct()],
            ParetoFront = [.. Leaderboard.Pareto(ranked, objective.Maximize).Select(r => r.Trial)],
            Rows = ranked,
            Warnings = warnings,
        };
        return await WriteOutputsAsync(context, p, board, trials.Space, specs, ct);
    }

    /// <summary>The search dependency: named by <c>search</c>, or the only one that wrote a <c>trials.json</c>.</summary>
    private static (string Dependency, ArtifactInfo Trials) ChooseSearch(LeaderboardParams p, StageContext context)
    {
        static ArtifactInfo? TrialsOf(IEnumerable<ArtifactInfo> artifacts) =>
            artifacts.FirstOrDefault(a => a.Path.EndsWith("/" + SearchTrials.FileName, StringComparison.Ordinal));
        if (p.Search is { } named)
        {
            if (!context.Inputs.TryGetValue(named, out var artifacts))
                throw new StageInputException($"params.search: '{named}' is not a dependency of stage '{context.StageName}'; add it to depends_on (dependencies: {string.Join(", ", context.Inputs.Keys)}).");
            return (named, TrialsOf(artifacts) ?? throw new StageInputException($"params.search: the dependency '{named}' wrote no {SearchTrials.FileName}; name a search stage."));
        }
        var searches = context.Inputs.Where(kv => TrialsOf(kv.Value) is not null).Select(kv => kv.Key).ToList();
        return searches.Count switch
        {
            1 => (searches[0], TrialsOf(context.Inputs[searches[0]])!),
            0 => throw new StageInputException($"Stage '{context.StageName}' ranks the trials of a search, but none of its dependencies ({string.Join(", ", context.Inputs.Keys)}) wrote a {SearchTrials.FileName}; add the search stage to depends_on."),
            _ => throw new StageInputException($"params.search: stage '{context.StageName}' depends on several searches ({string.Join(", ", searches)}); name the one to rank in 'search'."),
        };
    }

    private static async Task<SearchTrials> ReadTrialsAsync(StageContext context, string dependency, ArtifactInfo info, CancellationToken ct)
    {
        try
        {
            return await SearchTrials.ReadAsync(context.Store, info, ct);
        }
        catch (Exception e) when (e is ArtifactCorruptedException or ArtifactNotFoundException or JsonException)
        {
            throw new StageInputException($"The search trials '{info.Path}' could not be read: {e.Message} Re-run the search stage '{dependency}'.", e);
        }
    }

    private sealed record TrialArtifacts(long? Parameters, JsonNode? Spec);

    /// <summary>What a trial's train stage left: its parameter count and model spec, each null (with a warning) when unreadable.</summary>
    private static async Task<TrialArtifacts> ReadTrialAsync(StageContext context, SearchTrialRecord trial, List<string> warnings, CancellationToken ct)
    {
        var log = context.Logger;
        // Failed and cancelled trials often never wrote anything: only what should be there and is not is worth a warning.
        var expected = trial.Status is "completed" or "pruned";
        void Warn(string what, string reason)
        {
            log.LogWarning("Trial {Trial} ({Status}): {What}: {Reason}; its cell is left empty", trial.Number, trial.Status, what, reason);
            warnings.Add($"trial {trial.Number} ({trial.Status}): {what}: {reason}; its cell is left empty");
        }
        if (trial.Stages.FirstOrDefault(s => s.Role == "train") is not { } train)
        {
            if (expected) Warn("train stage", "the trial lists none");
            return new TrialArtifacts(null, null);
        }

        long? parameters = null;
        if (ArtifactOf(train, MetricsFile) is { } metrics)
        {
            try
            {
                await using var stream = await context.Store.OpenReadAsync(metrics.Path, metrics.Sha256, ct);
                var node = await JsonNode.ParseAsync(stream, cancellationToken: ct);
                parameters = Count((node as JsonObject)?["parameters"]);
                if (parameters is null) Warn("parameter count", $"{metrics.Path} has no 'parameters'");
            }
            catch (Exception e) when (IsUnreadable(e))
            {
                Warn("parameter count", $"{metrics.Path} could not be read ({e.Message})");
            }
        }
        else
        {
            parameters = Count(train.Summary?["parameters"]);
            if (parameters is null && expected) Warn("parameter count", $"stage '{train.Name}' wrote no {MetricsFile} and its summary has no 'parameters'");
        }

        JsonNode? spec = null;
        var sidecarName = ModelCheckpoint.SidecarPath(TrainedModels.ModelFile);
        if (ArtifactOf(train, sidecarName) is { } sidecar)
        {
            try
            {
                spec = (await ModelCheckpoint.ReadManifestAsync(context.Store, sidecar.Path, sidecar.Sha256, ct)).Spec;
            }
            catch (Exception e) when (IsUnreadable(e))
            {
                Warn("model spec", $"{sidecar.Path} could not be read ({e.Message})");
            }
        }
        else if (trial.Status == "completed")
        {
            Warn("model spec", $"stage '{train.Name}' wrote no {sidecarName}");
        }
        return new TrialArtifacts(parameters, spec);
    }

    private static ArtifactRef? ArtifactOf(SearchTrialStage stage, string fileName) =>
        stage.Artifacts.FirstOrDefault(a => a.Path.EndsWith("/" + fileName, StringComparison.Ordinal));

    /// <summary>
    /// A trial artifact that is missing, damaged or not what it should be. Anything else — a store that cannot be reached,
    /// a cancellation — fails the stage: a leaderboard with cells emptied by an outage would be cached as if complete.
    /// </summary>
    private static bool IsUnreadable(Exception e) =>
        e is ArtifactCorruptedException or ArtifactNotFoundException or JsonException or CheckpointFormatException;

    /// <summary>A whole, non-negative JSON number (a parameter count), else null.</summary>
    private static long? Count(JsonNode? node) =>
        node is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<double>(out var d) && d >= 0 && d == Math.Floor(d) && d < long.MaxValue
            ? (long)d
            : null;

    private static async Task<StageResult> WriteOutputsAsync(StageContext context, LeaderboardParams p, Leaderboard board, JsonObject space,
        IReadOnlyList<(string File, JsonNode Spec)> specs, CancellationToken ct)
    {
        await context.WriteJsonAsync(JsonFile, board, ct);
        await context.WriteOutputAsync(CsvFile, new MemoryStream(Encoding.UTF8.GetBytes(board.ToCsv())), ct);
        foreach (var (file, spec) in specs) await context.WriteJsonAsync(file, spec, ct);
        context.Progress.Report(0.85, "plots");
        foreach (var figure in LeaderboardPlots.All(board, space))
        {
            await context.WriteOutputAsync(figure.Name + ".png", new MemoryStream(figure.Png), ct);
            await context.WriteOutputAsync(figure.Name + ".svg", new MemoryStream(Encoding.UTF8.GetBytes(figure.Svg)), ct);
        }
        Log(context.Logger, p, board);

        var ranked = board.Rows.Where(r => r.Rank is not null).ToList();
        var summary = new JsonObject
        {
            ["metric"] = board.Objective.Metric,
            ["best_trial"] = board.Best?.Trial,
            ["best_objective"] = board.Best?.Objective is { } best ? Math.Round(best, 4) : null,
            ["completed"] = board.Counts["completed"],
            ["pruned"] = board.Counts["pruned"],
            ["failed"] = board.Counts["failed"],
            ["cancelled"] = board.Counts["cancelled"],
            ["worst_objective"] = ranked.Count > 0 ? Math.Round(ranked[^1].Objective!.Value, 4) : null,
            ["pareto_front"] = board.ParetoFront.Count,
        };
        return new StageResult(context.Outputs, summary);
    }

    private static void Log(ILogger log, LeaderboardParams p, Leaderboard board)
    {
        var o = board.Objective;
        log.LogInformation("Leaderboard of search {Search} ({Strategy}; {Metric} of {Of}, {Direction}): {Trials} trials, {Completed} completed, {Pruned} pruned, {Failed} failed, {Cancelled} cancelled; Pareto front: {Front}",
            board.Search, board.Strategy, o.Metric, o.Of, o.Direction, board.Rows.Count, board.Counts["completed"], board.Counts["pruned"], board.Counts["failed"], board.Counts["cancelled"],
            board.ParetoFront.Count == 0 ? "none" : string.Join(", ", board.ParetoFront.Select(t => $"#{t}")));
        foreach (var (row, i) in board.Rows.Take(p.Top).Select((r, i) => (r, i)))
        {
            log.LogInformation("{Position}. trial {Trial} ({Status}{Rung}): {Metric} {Objective}, {Parameters} parameters, {Assignment}",
                i + 1, row.Trial, row.Status, row.PrunedAtStep is { } step ? $" at step {step}" : "", o.Metric, LeaderboardPlots.Show(o, row.Objective),
                row.Parameters?.ToString("N0", CultureInfo.InvariantCulture) ?? "?", string.Join(", ", row.Assignment.Select(kv => $"{kv.Key}={Leaderboard.Value(kv.Value)}")));
        }
    }
}
