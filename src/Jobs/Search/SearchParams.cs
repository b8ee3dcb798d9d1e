using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Pipeline.Jobs.RunSpecs;
using Pipeline.Stages;
using Pipeline.Stages.Execution;
using Pipeline.Stages.Sweeps;

namespace Pipeline.Jobs.Search;

public enum SearchStrategy { Grid, Random, Tpe }

/// <summary>
/// Parameters of a <c>search</c> stage: the engine runs it (src/Jobs/Engine/SearchCoordinator.cs), adding one trial —
/// a stage of <see cref="TrialTemplate.Kind"/> (usually <c>train</c>), optionally followed by a <c>timestep-sweep</c> —
/// per proposal, at most <see cref="Parallel"/> at once, until <see cref="Budget"/> trials have been proposed and all
/// have ended. Trials depend on the search stage's own dependencies (e.g. the shards). It writes <c>trials.json</c>,
/// which a <c>leaderboard</c> stage depending on the search renders.
/// </summary>
public sealed partial record SearchParams : IStageParams
{
    public TrialTemplate Trial { get; init; } = new();
    public SearchSpace Space { get; init; } = [];
    public SearchObjective Objective { get; init; } = new();
    public SearchStrategy Strategy { get; init; } = SearchStrategy.Tpe;
    public int Seed { get; init; }

    /// <summary>How many trials are proposed in all (failed ones count).</summary>
    public int Budget { get; init; } = 10;

    /// <summary>The most trials running at once.</summary>
    public int Parallel { get; init; } = 1;

    /// <summary>How many trials may fail before the search stops and fails; the failed ones are on the leaderboard.</summary>
    public int AllowFailures { get; init; }

    /// <summary>Asynchronous successive halving: trials report their objective at rungs and the weaker ones stop there.</summary>
    public SuccessiveHalving? Pruning { get; init; }

    public const string Kind = "search";

    /// <summary>The stage kinds a trial may be (a trial's first stage; <c>probe</c> reports a synthetic objective, for checks).</summary>
    public static readonly IReadOnlyList<string> TrialKinds = ["train", "probe"];

    public const string SweepKind = "timestep-sweep";

    public IEnumerable<ValidationError> Validate()
    {
        foreach (var e in Space.Validate()) yield return e;
        if (Strategy == SearchStrategy.Grid && !Space.Validate().Any())
            foreach (var e in GridSampler.Validate(Space)) yield return e;
        if (Budget is < 1 or > 100_000) yield return new("budget", $"must be between 1 and 100000 trials; got {Budget}.");
        if (Parallel < 1 || Parallel > Math.Max(Budget, 1)) yield return new("parallel", $"must be between 1 and the budget ({Budget}); got {Parallel}.");
        if (AllowFailures < 0 || AllowFailures > Math.Max(Budget, 0)) yield return new("allow_failures", $"must be between 0 and the budget ({Budget}); got {AllowFailures}.");
        if (Seed < 0) yield return new("seed", $"must be 0 or positive; got {Seed}.");
        if (Pruning is not null)
            foreach (var e in Pruning.Validate()) yield return e with { Field = "pruning." + e.Field };
        foreach (var e in ValidateObjective()) yield return e;

        var trial = StageCatalog.Find(Trial.Kind);
        if (trial is null || !TrialKinds.Contains(Trial.Kind))
        {
            yield return new("trial.kind", $"'{Trial.Kind}' cannot be a trial; a trial is one of: {string.Join(", ", TrialKinds)}.");
            yield break;
        }
        var templateErrors = CheckParams(trial, Trial.Params, "trial.params").ToList();
        foreach (var e in templateErrors) yield return e;
        if (Trial.Sweep is not null)
            foreach (var e in CheckParams(StageCatalog.Get(SweepKind), Trial.Sweep, "trial.sweep")) yield return e;
        if (templateErrors.Count > 0) yield break;

        // Every value the space can give must make valid trial params: the path must exist and the field's own
        // validation must accept the value (each bound, each choice).
        foreach (var (path, parameter) in Space)
        {
            if (parameter.Validate().Any()) continue;
            foreach (var (member, value) in ProbeValues(parameter))
            {
                var at = SearchSpace.Field(path, member);
                var applied = Apply(Trial.Params, path, value, out var pathError);
                if (pathError is not null)
                {
                    yield return new(at, pathError);
                    break;
                }
                var errors = CheckParams(trial, applied, "").ToList();
                if (errors.Count > 0)
                {
                    var first = errors[0];
                    yield return new(at, $"{SearchSpace.Show(value)} makes the {Trial.Kind} params invalid: {(first.Field.Length == 0 ? "" : first.Field + ": ")}{first.Message}");
                    if (errors.Any(e => e.Message.StartsWith("unknown field", StringComparison.Ordinal))) break;
                }
            }
        }
    }

    private IEnumerable<ValidationError> ValidateObjective()
    {
        if (Objective.Of is not ("train" or "sweep")) yield return new("objective.of", $"must be 'train' (the trial's first stage) or 'sweep'; got '{Objective.Of}'.");
        else if (Objective.Of == "sweep" && Trial.Sweep is null) yield return new("objective.of", "is 'sweep' but the trial has no sweep; add trial.sweep or use 'train'.");
        if (string.IsNullOrWhiteSpace(Objective.Metric)) yield return new("objective.metric", "names no metric; use a summary field of the trial stage, e.g. top1.");
        if (Objective.Direction is not ("maximize" or "minimize")) yield return new("objective.direction", $"must be 'maximize' or 'minimize'; got '{Objective.Direction}'.");
        if (Pruning is not null && Objective.Of == "sweep")
            yield return new("pruning", "judges trials on their first stage's objective at rungs; set objective.of to 'train' or remove pruning.");
        if (Pruning is not null && Trial.Kind == "train" && !Stages.Training.TrainHandler.RungMetrics.Contains(Objective.Metric))
            yield return new("objective.metric", $"'{Objective.Metric}' is not measured at rungs; a pruning search judges train trials on {string.Join(", ", Stages.Training.TrainHandler.RungMetrics)}.");
    }

    public ObjectiveDirection Direction => Objective.Direction == "minimize" ? ObjectiveDirection.Minimize : ObjectiveDirection.Maximize;

    public ISampler CreateSampler() => Strategy switch
    {
        SearchStrategy.Grid => new GridSampler(Space),
        SearchStrategy.Random => new RandomSampler(Space, Seed),
        _ => new TpeSampler(Space, Seed, Direction),
    };

    /// <summary>The trial's first-stage params: the template with every value of <paramref name="assignment"/> set at its path.</summary>
    public JsonObject TrialParams(Assignment assignment)
    {
        var result = Trial.Params?.DeepClone().AsObject() ?? [];
        foreach (var (path, value) in assignment)
        {
            result = Apply(result, path, value, out var error);
            if (error is not null) throw new InvalidOperationException($"space[\"{path}\"]: {error}"); // validated before
        }
        return result;
    }

    private static IEnumerable<ValidationError> CheckParams(StageKind kind, JsonObject? json, string prefix)
    {
        var errors = new List<ValidationError>();
        var element = JsonSerializer.SerializeToElement(json ?? [], PipelineJson.Options);
        JsonShape.Check(element, kind.ParamsType, prefix, errors);
        if (errors.Count > 0) return errors;
        try
        {
            return kind.DeserializeParams(element).Validate().Select(e => e with { Field = prefix.Length == 0 ? e.Field : $"{prefix}.{e.Field}" }).ToList();
        }
        catch (JsonException)
        {
            return [new ValidationError(prefix, "could not be read as the stage's params; check them against the README")];
        }
    }

    /// <summary>The values of a parameter its validation tries: every choice, or both bounds.</summary>
    private static IEnumerable<(string Member, JsonNode Value)> ProbeValues(SearchParameter p) => p.Kind switch
    {
        ParameterKind.Choice => p.Values.Select((v, i) => ($"values[{i}]", v)),
        ParameterKind.Int => [("low", JsonValue.Create((long)p.Low!.Value)), ("high", JsonValue.Create((long)p.High!.Value))],
        _ => [("low", JsonValue.Create(p.Low!.Value)), ("high", JsonValue.Create(p.High!.Value))],
    };

    /// <summary>
    /// A copy of <paramref name="root"/> with <paramref name="value"/> at the dotted <paramref name="path"/>
    /// (<c>optimizer.learning_rate</c>, <c>model.spec.layers[2].cell.type</c>). Missing objects on the way are created;
    /// an index must name an existing array element. <paramref name="error"/> says why a path cannot be set.
    /// </summary>
    public static JsonObject Apply(JsonObject? root, string path, JsonNode value, out string? error)
    {
        var copy = root?.DeepClone().AsObject() ?? [];
        error = null;
        JsonNode current = copy;
        var segments = path.Split('.');
        for (var i = 0; i < segments.Length; i++)
        {
            var m = Segment().Match(segments[i]);
            if (!m.Success)
            {
                error = $"'{segments[i]}' is not a field name or field[index]; write the path like optimizer.learning_rate or model.spec.layers[2].cell.type";
                return copy;
            }
            var name = m.Groups["name"].Value;
            var indices = m.Groups["index"].Captures.Select(c => int.Parse(c.Value, CultureInfo.InvariantCulture)).ToList();
            var last = i == segments.Length - 1;
            if (current is not JsonObject obj)
            {
                error = $"'{string.Join('.', segments[..i])}' is not an object, so '{name}' cannot be set in it";
                return copy;
            }
            if (indices.Count == 0)
            {
                if (last)
                {
                    obj[name] = value.DeepClone();
                    return copy;
                }
                current = obj[name] ??= new JsonObject();
                continue;
            }
            JsonNode? node = obj[name];
            for (var k = 0; k < indices.Count; k++)
            {
                if (node is not JsonArray array || indices[k] >= array.Count)
                {
                    error = $"'{string.Join('.', segments[..i].Append(name + string.Concat(indices.Take(k + 1).Select(x => $"[{x}]"))))}' is not an element of the template's params; give the whole array in the trial template so the index exists";
                    return copy;
                }
                if (last && k == indices.Count - 1)
                {
                    array[indices[k]] = value.DeepClone();
                    return copy;
                }
                node = array[indices[k]];
            }
            current = node!;
        }
        return copy;
    }

    [GeneratedRegex(@"^(?<name>[A-Za-z_][A-Za-z0-9_]*)(\[(?<index>\d{1,6})\])*$")]
    private static partial Regex Segment();
}

/// <summary>
/// What one trial runs: a stage of <see cref="Kind"/> with <see cref="Params"/> (the space's values set into them),
/// and, when <see cref="Sweep"/> is given, a <c>timestep-sweep</c> of its model with those params.
/// </summary>
public sealed record TrialTemplate
{
    public string Kind { get; init; } = "train";
    public JsonObject? Params { get; init; }
    public JsonObject? Sweep { get; init; }
}
