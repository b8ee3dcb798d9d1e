using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Pipeline.Stages.Execution;

namespace Pipeline.Jobs.Search;

[System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1720", Justification = "The JSON kind is \"int\", as in Optuna's suggest_int.")]
public enum ParameterKind { Choice, Uniform, LogUniform, Int }

/// <summary>
/// The parameters a search varies, in the order written, each keyed by its dotted path into a train stage's params
/// (<c>"optimizer.learning_rate"</c>, <c>"model.spec.layers[2].cell.type"</c>). As JSON it is one object, path → parameter.
/// </summary>
public sealed class SearchSpace : OrderedDictionary<string, SearchParameter>
{
    public SearchSpace() : base(StringComparer.Ordinal) { }

    public SearchSpace(IEnumerable<KeyValuePair<string, SearchParameter>> parameters) : base(parameters, StringComparer.Ordinal) { }

    public IEnumerable<ValidationError> Validate()
    {
        if (Count == 0) yield return new("space", "has no parameters; name at least one path to search over");
        foreach (var (path, p) in this)
        {
            foreach (var e in p.Validate()) yield return e with { Field = Field(path, e.Field) };
            if (string.IsNullOrWhiteSpace(path)) yield return new(Field(path), "a parameter needs a path");
            if (p.When is not { } when) continue;
            if (when.Path == path) yield return new(Field(path, "when.path"), "a parameter cannot depend on itself");
            else if (!TryGetValue(when.Path, out var target))
                yield return new(Field(path, "when.path"), $"'{when.Path}' is not a parameter of the space; parameters: {string.Join(", ", Keys)}");
            else if (target.Kind != ParameterKind.Choice)
                yield return new(Field(path, "when.path"), $"'{when.Path}' is a {Name(target.Kind)} parameter; a condition must point at a choice");
            else
                for (var i = 0; i < when.In.Count; i++)
                    if (!target.Values.Any(v => SameValue(v, when.In[i])))
                        yield return new(Field(path, $"when.in[{i}]"), $"{Show(when.In[i])} is not a value of '{when.Path}'");
            if (CycleFrom(path) is { } cycle) yield return new(Field(path, "when"), $"the conditions form a cycle: {string.Join(" → ", cycle)}");
        }
    }

    /// <summary>The paths in an order where every condition's parameter comes before the parameters it switches on.</summary>
    public IReadOnlyList<string> DecisionOrder()
    {
        var order = new List<string>();
        var placed = new HashSet<string>();
        void Place(string path)
        {
            if (!placed.Add(path)) return;
            if (this[path].When is { } w && ContainsKey(w.Path)) Place(w.Path);
            order.Add(path);
        }
        foreach (var path in Keys) Place(path);
        return order;
    }

    /// <summary>Whether a parameter is active given the values decided so far (its condition's parameter decided first).</summary>
    public bool IsActive(string path, Assignment decided) =>
        this[path].When is not { } w || (decided.TryGetValue(w.Path, out var v) && w.In.Any(x => SameValue(x, v)));

    /// <summary>Throws when the space is invalid; samplers take only valid spaces.</summary>
    internal void EnsureValid()
    {
        var errors = Validate().ToList();
        if (errors.Count > 0) throw new ArgumentException("Invalid search space: " + string.Join("; ", errors));
    }

    internal static string Field(string path, string? member = null) => $"space[\"{path}\"]" + (member is null or "" ? "" : "." + member);

    internal static string Name(ParameterKind kind) => JsonNamingPolicy.SnakeCaseLower.ConvertName(kind.ToString());

    private List<string>? CycleFrom(string start)
    {
        var chain = new List<string> { start };
        for (var path = start; this[path].When is { } w && ContainsKey(w.Path) && w.Path != path; path = w.Path)
        {
            if (w.Path == start) return [.. chain, start];
            if (chain.Contains(w.Path)) return null; // a cycle that does not pass through start: reported at its own members
            chain.Add(w.Path);
        }
        return null;
    }

    /// <summary>Two JSON values are the same value: numbers by their value (3 = 3.0), everything else by its JSON.</summary>
    public static bool SameValue(JsonNode? a, JsonNode? b) =>
        a is not null && b is not null && a.GetValueKind() == JsonValueKind.Number && b.GetValueKind() == JsonValueKind.Number
            ? Number(a) == Number(b)
            : JsonNode.DeepEquals(a, b);

    internal static double Number(JsonNode node) => double.Parse(node.ToJsonString(), CultureInfo.InvariantCulture);

    internal static string Show(JsonNode? value) => value?.ToJsonString() ?? "null";
}

/// <summary>
/// One searched parameter. <c>choice</c>: one of <see cref="Values"/>. <c>uniform</c>: a real in [low, high].
/// <c>log_uniform</c>: a real in [low, high], uniform in its logarithm (learning rates). <c>int</c>: an integer in
/// [low, high] (both included) on multiples of <see cref="Step"/> from low. <see cref="Grid"/>: how many evenly spaced
/// values a grid search takes from a numeric range. <see cref="When"/>: active only when another choice takes one of
/// some values.
/// </summary>
public sealed record SearchParameter
{
    public required ParameterKind Kind { get; init; }
    public IReadOnlyList<JsonNode> Values { get; init; } = [];
    public double? Low { get; init; }
    public double? High { get; init; }
    public int? Step { get; init; }
    public int? Grid { get; init; }
    public ActiveWhen? When { get; init; }

    public IEnumerable<ValidationError> Validate()
    {
        var kind = SearchSpace.Name(Kind);
        if (Kind == ParameterKind.Choice)
        {
            if (Values.Count == 0) yield return new("values", "a choice needs at least one value");
            for (var i = 0; i < Values.Count; i++)
            {
                if (Values[i]?.GetValueKind() is not (JsonValueKind.String or JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False))
                    yield return new($"values[{i}]", $"must be a string, number or bool, got {SearchSpace.Show(Values[i])}");
                else if (Values.Take(i).Any(v => SearchSpace.SameValue(v, Values[i])))
                    yield return new($"values[{i}]", $"{SearchSpace.Show(Values[i])} is listed twice");
            }
            if (Low is not null) yield return new("low", "a choice has values, not low");
            if (High is not null) yield return new("high", "a choice has values, not high");
            if (Step is not null) yield return new("step", "only an int parameter has a step");
            if (Grid is not null) yield return new("grid", "a choice is searched over all its values; grid is for numeric ranges");
            yield break;
        }
        if (Values.Count > 0) yield return new("values", $"only a choice has values; a {kind} parameter has low and high");
        if (Low is not { } low || !double.IsFinite(low)) yield return new("low", $"a {kind} parameter needs a finite low, got {Low?.ToString(CultureInfo.InvariantCulture) ?? "none"}");
        if (High is not { } high || !double.IsFinite(high)) yield return new("high", $"a {kind} parameter needs a finite high, got {High?.ToString(CultureInfo.InvariantCulture) ?? "none"}");
        if (Low is { } l && High is { } h && double.IsFinite(l) && double.IsFinite(h))
        {
            if (l >= h) yield return new("low", $"must be below high (got {l.ToString(CultureInfo.InvariantCulture)} ≥ {h.ToString(CultureInfo.InvariantCulture)})");
            if (Kind == ParameterKind.LogUniform && l <= 0) yield return new("low", $"must be above 0 for a log_uniform parameter, got {l.ToString(CultureInfo.InvariantCulture)}");
            if (Kind == ParameterKind.Int && (l != Math.Round(l) || h != Math.Round(h)))
                yield return new("low", $"an int parameter needs whole-number bounds, got {l.ToString(CultureInfo.InvariantCulture)} and {h.ToString(CultureInfo.InvariantCulture)}");
            else if (Kind == ParameterKind.Int && Step is > 0 and var s && (h - l) % s != 0)
                yield return new("step", $"must divide high − low so that high is a value (got {s}, high − low = {(h - l).ToString(CultureInfo.InvariantCulture)})");
        }
        if (Step is not null && Kind != ParameterKind.Int) yield return new("step", $"only an int parameter has a step; a {kind} parameter is continuous");
        if (Step is < 1) yield return new("step", $"must be at least 1, got {Step}");
        if (Grid is < 2) yield return new("grid", $"a grid needs at least 2 values (low and high), got {Grid}");
        if (When is { } w)
        {
            if (string.IsNullOrWhiteSpace(w.Path)) yield return new("when.path", "names no parameter");
            if (w.In.Count == 0) yield return new("when.in", "must list at least one value of the condition's choice");
        }
    }
}

/// <summary>A parameter is active only when the choice at <see cref="Path"/> takes one of <see cref="In"/>.</summary>
public sealed record ActiveWhen(string Path, IReadOnlyList<JsonNode> In);

/// <summary>The values of the active parameters of one trial, path → JSON value, in the space's decision order.</summary>
public sealed class Assignment : OrderedDictionary<string, JsonNode>
{
    public Assignment() : base(StringComparer.Ordinal) { }

    public bool SameAs(Assignment other) =>
        Count == other.Count && this.All(kv => other.TryGetValue(kv.Key, out var v) && SearchSpace.SameValue(kv.Value, v));

    public double Number(string path) => SearchSpace.Number(this[path]);

    public override string ToString() => string.Join(", ", this.Select(kv => $"{kv.Key}={SearchSpace.Show(kv.Value)}"));
}
