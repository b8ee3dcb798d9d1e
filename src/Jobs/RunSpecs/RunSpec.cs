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
    [GeneratedRegex("^[a-z0-9][a-z0-9_-]{0,63}$")]
    private static partial Regex StageNamePattern();

    /// <summary>Parses JSON text, applies <c>key=value</c> overrides, validates, and expands to a plan in dependency order.</summary>
    public static (RunSpec Spec, IReadOnlyList<PlannedStage> Plan, string Json) Load(string json, IEnumerable<string>? overrides = null, string source = "RunSpec")
    {
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            throw new RunSpecException([new ValidationError(source, $"is not valid JSON ({e.Message})")]);
        }
        if (node is not JsonObject root) throw new RunSpecException([new ValidationError(source, "must be a JSON object with 'name' and 'stages'")]);
        foreach (var o in overrides ?? []) ApplyOverride(root, o);

        RunSpec? spec;
        try
        {
            spec = root.Deserialize<RunSpec>(PipelineJson.Options);
        }
        catch (JsonException e)
        {
            throw new RunSpecException([new ValidationError(JsonPathToField(e.Path), Describe(e, typeof(RunSpec)))]);
        }
        if (spec is null) throw new RunSpecException([new ValidationError(source, "is empty")]);
        var plan = Validate(spec);
        return (spec, plan, root.ToJsonString(PipelineJson.Options));
    }

    public static IReadOnlyList<PlannedStage> Validate(RunSpec spec)
    {
        var errors = new List<ValidationError>();
        if (string.IsNullOrWhiteSpace(spec.Name)) errors.Add(new("name", "is required: give the run a short name"));
        if (spec.Stages.Count == 0) errors.Add(new("stages", "must hold at least one stage"));

        var planned = new Dictionary<string, PlannedStage>(StringComparer.Ordinal);
        foreach (var (name, stage) in spec.Stages)
        {
            var at = $"stages.{name}";
            if (!StageNamePattern().IsMatch(name)) errors.Add(new(at, "stage names use lower-case letters, digits, '-' and '_' (at most 64 characters)"));
            var kind = StageCatalog.Find(stage.Kind ?? "");
            if (kind is null)
            {
                errors.Add(new($"{at}.kind", $"unknown stage kind '{stage.Kind}'; use one of: {string.Join(", ", StageCatalog.All.Keys.Order())}"));
                continue;
            }
            foreach (var dep in stage.DependsOn ?? [])
            {
                if (!spec.Stages.ContainsKey(dep)) errors.Add(new($"{at}.depends_on", $"'{dep}' is not a stage of this run; stages are: {string.Join(", ", spec.Stages.Keys)}"));
                if (dep == name) errors.Add(new($"{at}.depends_on", "a stage cannot depend on itself"));
            }
            IStageParams parameters;
            try
            {
                parameters = kind.DeserializeParams(stage.Params);
            }
            catch (JsonException e)
            {
                var rel = JsonPathToField(e.Path);
                errors.Add(new(rel == "$" ? $"{at}.params" : $"{at}.params.{rel}", Describe(e, kind.ParamsType)));
                continue;
            }
            errors.AddRange(parameters.Validate().Select(e => e with { Field = $"{at}.params.{e.Field}" }));
            planned[name] = new PlannedStage(name, kind, parameters, kind.Canonical(parameters), stage.DependsOn ?? []);
        }
        if (errors.Count == 0 && FindCycle(spec) is { } cycle) errors.Add(new("stages", $"dependencies form a cycle: {string.Join(" -> ", cycle)}; remove one of these edges"));
        if (errors.Count > 0) throw new RunSpecException(errors);
        return TopologicalOrder(planned);
    }

    /// <summary><c>--set stages.shards.params.seed=7</c>: a dotted path into the spec; the value is JSON when it parses, else a string.</summary>
    public static void ApplyOverride(JsonObject root, string assignment)
    {
        var eq = assignment.IndexOf('=', StringComparison.Ordinal);
        if (eq <= 0) throw new RunSpecException([new ValidationError("--set", $"'{assignment}' must look like key.path=value, e.g. stages.shards.params.seed=7")]);
        var path = assignment[..eq].Split('.');
        var text = assignment[(eq + 1)..];
        JsonNode? value;
        try
        {
            value = JsonNode.Parse(text);
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

    private static List<string>? FindCycle(RunSpec spec)
    {
        var state = new Dictionary<string, int>();
        var stack = new List<string>();
        List<string>? Visit(string n)
        {
            state[n] = 1;
            stack.Add(n);
            foreach (var d in spec.Stages[n].DependsOn ?? [])
            {
                if (state.GetValueOrDefault(d) == 1) return [.. stack[stack.IndexOf(d)..], d];
                if (state.GetValueOrDefault(d) == 0 && Visit(d) is { } c) return c;
            }
            stack.RemoveAt(stack.Count - 1);
            state[n] = 2;
            return null;
        }
        foreach (var n in spec.Stages.Keys)
        {
            if (state.GetValueOrDefault(n) == 0 && Visit(n) is { } c) return c;
        }
        return null;
    }

    private static List<PlannedStage> TopologicalOrder(Dictionary<string, PlannedStage> stages)
    {
        var ordered = new List<PlannedStage>();
        var seen = new HashSet<string>();
        void Visit(PlannedStage s)
        {
            if (!seen.Add(s.Name)) return;
            foreach (var d in s.DependsOn) Visit(stages[d]);
            ordered.Add(s);
        }
        foreach (var s in stages.Values) Visit(s);
        return ordered;
    }

    private static string JsonPathToField(string? path) =>
        string.IsNullOrEmpty(path) || path == "$" ? "$" : path.TrimStart('$').TrimStart('.').Replace("['", ".", StringComparison.Ordinal).Replace("']", "", StringComparison.Ordinal).TrimStart('.');

    private static string Describe(JsonException e, Type target)
    {
        var m = e.Message;
        if (m.Contains("could not be mapped", StringComparison.Ordinal))
        {
            if (JsonPathToField(e.Path).Contains('.', StringComparison.Ordinal)) return "unknown field; check its spelling against the stage's parameters";
            var known = target.GetProperties().Where(p => p.CanWrite || p.DeclaringType!.GetConstructors().Any(c => c.GetParameters().Any(a => a.Name == p.Name)))
                .Select(p => JsonNamingPolicy.SnakeCaseLower.ConvertName(p.Name)).Where(n => n != "context");
            return $"unknown field; known fields here: {string.Join(", ", known)}";
        }
        var cut = m.IndexOf(" Path:", StringComparison.Ordinal);
        return cut > 0 ? m[..cut] : m;
    }
}
