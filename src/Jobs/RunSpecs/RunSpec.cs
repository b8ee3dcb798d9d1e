using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Pipeline.Stages;
using Pipeline.Stages.Execution;

namespace Pipeline.Jobs.RunSpecs;

/// <summary>
/// A RunSpec: a named DAG of stages. JSON shape (snake_case; unknown fields are errors):
/// <code>{ "name": "…", "description": "…", "stages": { "shards": { "kind": "shard", "params": { … }, "depends_on": [] } } }</code>
/// </summary>
public sealed record RunSpec(string Name, IReadOnlyDictionary<string, StageSpec> Stages, string? Description = null);

public sealed record StageSpec(string Kind, JsonElement? Params = null, IReadOnlyList<string>? DependsOn = null);

/// <summary>A stage after validation: its kind, its parameters with defaults filled in, and its canonical form.</summary>
public sealed record PlannedStage(string Name, StageKind Kind, IStageParams Params, string CanonicalParams, IReadOnlyList<string> DependsOn);

/// <summary>The RunSpec could not be used; every message names its field and says the fix.</summary>
public sealed class RunSpecException(IReadOnlyList<ValidationError> errors)
    : Exception("Invalid RunSpec:\n" + string.Join("\n", errors.Select(e => "  " + e)))
{
    public IReadOnlyList<ValidationError> Errors { get; } = errors;
}

public static partial class RunSpecLoader
{
    /// <summary>The deepest nesting a RunSpec may have (System.Text.Json's default limit).</summary>
    public const int MaxDepth = 64;

    // A field given twice is an error rather than "the last one wins": one of the two is a mistake.
    private static readonly JsonDocumentOptions DocumentOptions = new()
    {
        CommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        AllowDuplicateProperties = false,
        MaxDepth = MaxDepth,
    };

    [GeneratedRegex("^[a-z0-9][a-z0-9_-]{0,63}$")]
    private static partial Regex StageNamePattern();

    /// <summary>
    /// Parses JSON text, applies <c>key=value</c> overrides, validates, and expands to a plan in dependency order.
    /// Whatever the input, the only exception is a <see cref="RunSpecException"/> whose errors name their fields.
    /// </summary>
    public static (RunSpec Spec, IReadOnlyList<PlannedStage> Plan, string Json) Load(string json, IEnumerable<string>? overrides = null, string source = "RunSpec")
    {
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(json, documentOptions: DocumentOptions);
            _ = node?.ToJsonString(); // JsonNode reads lazily: make a bad escape fail here, not in an override
        }
        catch (JsonException e)
        {
            throw new RunSpecException([new ValidationError(source, $"is not valid JSON ({e.Message})")]);
        }
        catch (InvalidOperationException)
        {
            throw new RunSpecException([HalfSurrogate(source)]);
        }
        if (node is not JsonObject root) throw new RunSpecException([new ValidationError(source, "must be a JSON object with 'name' and 'stages'")]);
        foreach (var o in overrides ?? []) ApplyOverride(root, o);

        string text;
        try
        {
            text = root.ToJsonString(PipelineJson.Options);
        }
        catch (InvalidOperationException)
        {
            // Only an override can get here: nesting past the limit, or a \u escape in its value.
            throw new RunSpecException([Depth(root) > MaxDepth
                ? new ValidationError("--set", $"nests the RunSpec more than {MaxDepth} levels deep; set a field that exists, e.g. stages.shards.params.seed=7")
                : HalfSurrogate("--set")]);
        }

        var errors = new List<ValidationError>();
        using (var document = JsonDocument.Parse(text, DocumentOptions))
        {
            JsonShape.Check(document.RootElement, typeof(RunSpec), "", errors);
        }
        if (errors.Count > 0) throw new RunSpecException(errors);
        RunSpec? spec;
        try
        {
            spec = JsonSerializer.Deserialize<RunSpec>(text, PipelineJson.Options);
        }
        catch (JsonException e)
        {
            throw new RunSpecException([Unreadable(e, "")]);
        }
        if (spec is null) throw new RunSpecException([new ValidationError(source, "is empty")]);
        var plan = Validate(spec);
        return (spec, plan, text);
    }

    public static IReadOnlyList<PlannedStage> Validate(RunSpec spec)
    {
        var errors = new List<ValidationError>();
        if (string.IsNullOrWhiteSpace(spec.Name)) errors.Add(new("name", "is required: give the run a short name"));
        if (spec.Stages.Count == 0) errors.Add(new("stages", "must hold at least one stage"));

        var planned = new Dictionary<string, PlannedStage>(StringComparer.Ordinal);
        foreach (var (name, stage) in spec.Stages)
        {
            var at = JsonShape.Child("stages", name);
            if (!StageNamePattern().IsMatch(name)) errors.Add(new(at, "stage names use lower-case letters, digits, '-' and '_' (at most 64 characters)"));
            if (stage is null)
            {
                errors.Add(new(at, JsonShape.MustBe(typeof(StageSpec), "null")));
                continue;
            }
            errors.AddRange(DependencyErrors(spec, name, stage, at));
            var kind = StageCatalog.Find(stage.Kind ?? "");
            if (kind is null)
            {
                errors.Add(new($"{at}.kind", $"unknown stage kind '{stage.Kind}'; use one of: {string.Join(", ", StageCatalog.All.Keys.Order())}"));
                continue;
            }
            var paramsAt = $"{at}.params";
            if (stage.Params is { ValueKind: not (JsonValueKind.Null or JsonValueKind.Undefined) } given)
            {
                var before = errors.Count;
                JsonShape.Check(given, kind.ParamsType, paramsAt, errors);
                if (errors.Count > before) continue;
            }
            IStageParams parameters;
            try
            {
                parameters = kind.DeserializeParams(stage.Params);
            }
            catch (JsonException e)
            {
                errors.Add(Unreadable(e, paramsAt));
                continue;
            }
            errors.AddRange(parameters.Validate().Select(e => e with { Field = $"{paramsAt}.{e.Field}" }));
            planned[name] = new PlannedStage(name, kind, parameters, kind.Canonical(parameters), stage.DependsOn ?? []);
        }
        foreach (var search in planned.Values.Where(p => p.Kind.Kind == Search.SearchParams.Kind))
        {
            foreach (var taken in spec.Stages.Keys.Where(n => n.StartsWith(search.Name + "-t", StringComparison.Ordinal) && n.Length > search.Name.Length + 2 && char.IsAsciiDigit(n[search.Name.Length + 2])))
                errors.Add(new(JsonShape.Child("stages", taken), $"names like '{search.Name}-t00' are the trials of search '{search.Name}'; rename this stage"));
        }
        if (errors.Count == 0 && FindCycle(spec) is { } cycle) errors.Add(new("stages", $"dependencies form a cycle: {string.Join(" -> ", cycle)}; remove one of these edges"));
        if (errors.Count > 0) throw new RunSpecException(errors);
        return TopologicalOrder(planned);
    }

    private static IEnumerable<ValidationError> DependencyErrors(RunSpec spec, string name, StageSpec stage, string at)
    {
        var deps = stage.DependsOn ?? [];
        var listed = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < deps.Count; i++)
        {
            var dep = deps[i];
            var entry = $"{at}.depends_on[{i}]";
            if (dep is null) yield return new(entry, JsonShape.MustBe(typeof(string), "null"));
            else if (string.IsNullOrWhiteSpace(dep)) yield return new(entry, $"is empty; name one of this run's stages: {string.Join(", ", spec.Stages.Keys)}");
            else if (!listed.Add(dep)) yield return new(entry, $"'{dep}' is listed twice; list each dependency once");
            else if (dep == name) yield return new($"{at}.depends_on", "a stage cannot depend on itself");
            else if (!spec.Stages.ContainsKey(dep)) yield return new($"{at}.depends_on", $"'{dep}' is not a stage of this run; stages are: {string.Join(", ", spec.Stages.Keys)}");
        }
    }

    /// <summary><c>--set stages.shards.params.seed=7</c>: a dotted path into the spec; the value is JSON when it parses, else a string.</summary>
    public static void ApplyOverride(JsonObject root, string assignment)
    {
        var eq = assignment.IndexOf('=', StringComparison.Ordinal);
        if (eq <= 0) throw new RunSpecException([new ValidationError("--set", $"'{assignment}' must look like key.path=value, e.g. stages.shards.params.seed=7")]);
        var path = assignment[..eq].Split('.');
        if (path.Any(string.IsNullOrWhiteSpace))
        {
            throw new RunSpecException([new ValidationError("--set", $"'{assignment[..eq]}' has an empty part; name each field of the path, e.g. stages.shards.params.seed=7")]);
        }
        var text = assignment[(eq + 1)..];
        JsonNode? value;
        try
        {
            value = JsonNode.Parse(text, documentOptions: DocumentOptions);
        }
        catch (JsonException)
        {
            value = JsonValue.Create(text);
        }
        JsonObject current = root;
        for (var i = 0; i < path.Length - 1; i++)
        {
            if (current[path[i]] is JsonObject next) current = next;
            else if (current[path[i]] is null)
            {
                next = new JsonObject();
                current[path[i]] = next;
                current = next;
            }
            else throw new RunSpecException([new ValidationError("--set", $"'{string.Join('.', path[..(i + 1)])}' is not an object, so '{assignment[..eq]}' cannot be set")]);
        }
        current[path[^1]] = value;
    }

    /// <summary>The first dependency cycle found (depth first, in the order stages are written), or null.</summary>
    private static List<string>? FindCycle(RunSpec spec)
    {
        // Iterative, so that a long chain of stages cannot overflow the stack.
        var done = new HashSet<string>(StringComparer.Ordinal);
        foreach (var start in spec.Stages.Keys)
        {
            if (done.Contains(start)) continue;
            var path = new List<string> { start };
            var onPath = new HashSet<string>(StringComparer.Ordinal) { start };
            var next = new List<int> { 0 };
            while (path.Count > 0)
            {
                var deps = spec.Stages[path[^1]].DependsOn ?? [];
                if (next[^1] == deps.Count)
                {
                    done.Add(path[^1]);
                    onPath.Remove(path[^1]);
                    path.RemoveAt(path.Count - 1);
                    next.RemoveAt(next.Count - 1);
                    continue;
                }
                var d = deps[next[^1]++];
                if (onPath.Contains(d)) return [.. path[path.IndexOf(d)..], d];
                if (done.Contains(d)) continue;
                path.Add(d);
                onPath.Add(d);
                next.Add(0);
            }
        }
        return null;
    }

    private static List<PlannedStage> TopologicalOrder(Dictionary<string, PlannedStage> stages)
    {
        var ordered = new List<PlannedStage>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var start in stages.Values)
        {
            if (!seen.Add(start.Name)) continue;
            var stack = new Stack<(PlannedStage Stage, int Next)>([(start, 0)]);
            while (stack.TryPop(out var top))
            {
                if (top.Next == top.Stage.DependsOn.Count)
                {
                    ordered.Add(top.Stage);
                    continue;
                }
                stack.Push((top.Stage, top.Next + 1));
                var d = stages[top.Stage.DependsOn[top.Next]];
                if (seen.Add(d.Name)) stack.Push((d, 0));
            }
        }
        return ordered;
    }

    private static int Depth(JsonNode? node) => node switch
    {
        JsonObject o => 1 + o.Select(p => Depth(p.Value)).DefaultIfEmpty(0).Max(),
        JsonArray a => 1 + a.Select(Depth).DefaultIfEmpty(0).Max(),
        _ => 0,
    };

    private static ValidationError HalfSurrogate(string field) =>
        new(field, "holds a \\u escape that is half of a surrogate pair (\\ud800-\\udfff alone); write the character itself or both halves");

    /// <summary>
    /// A value <see cref="JsonShape"/> let through that the serializer still refused: named by its path, in words that
    /// do not leak the serializer's type names.
    /// </summary>
    private static ValidationError Unreadable(JsonException e, string prefix)
    {
        var rel = JsonPathToField(e.Path);
        var field = rel == "$" ? (prefix.Length == 0 ? "RunSpec" : prefix) : (prefix.Length == 0 ? rel : $"{prefix}.{rel}");
        return new(field, "could not be read as the type this field needs; check it against the field's description in the README");
    }

    private static string JsonPathToField(string? path) =>
        string.IsNullOrEmpty(path) || path == "$" ? "$" : path.TrimStart('$').TrimStart('.').Replace("['", ".", StringComparison.Ordinal).Replace("']", "", StringComparison.Ordinal).TrimStart('.');
}
