using System.Text.Json;
using System.Text.Json.Nodes;

namespace Pipeline.Jobs.Runs;

/// <summary>One compared key and its value in each run (null where the run does not have it).</summary>
public sealed record ComparedValue(string Key, IReadOnlyList<string?> Values)
{
    public bool Differs => Values.Distinct(StringComparer.Ordinal).Skip(1).Any();
}

/// <summary>
/// What differs between runs (`runs compare`). Each run is flattened to keys with dotted JSON paths: the run's preset
/// and overrides, then per stage (matched by name) its kind, dependencies, every param with its default filled in
/// (<c>rgc.params.model.width</c>) and every metric (<c>rgc.metrics.top1</c>: metrics.json, then the summary's other
/// keys). An array of plain values is one value; an array holding objects is flattened by index (<c>areas[0].layer</c>).
/// </summary>
public static class RunComparison
{
    /// <summary>One run's keys, in order: run-level first, then stage by stage as the run lists them.</summary>
    public static IReadOnlyList<KeyValuePair<string, string>> Flatten(RunDetail run, IReadOnlyDictionary<string, JsonObject> factsByStage)
    {
        var keys = new List<KeyValuePair<string, string>>
        {
            new("preset", run.Preset ?? "(a RunSpec, no preset)"),
            new("overrides", run.Overrides.Count == 0 ? "(none)" : string.Join(" ", run.Overrides)),
        };
        foreach (var s in run.Stages)
        {
            keys.Add(new($"{s.Name}.kind", s.Kind));
            keys.Add(new($"{s.Name}.depends_on", s.DependsOn.Count == 0 ? "[]" : $"[{string.Join(", ", s.DependsOn)}]"));
            Flatten(s.Params, $"{s.Name}.params", keys);
            Flatten(factsByStage.GetValueOrDefault(s.Name), $"{s.Name}.metrics", keys);
        }
        return keys;
    }

    /// <summary>
    /// Every key of any run, each with its value per run (in the runs' order), keys in the order they first appear; only
    /// the keys whose values differ unless <paramref name="all"/>.
    /// </summary>
    public static IReadOnlyList<ComparedValue> Compare(IReadOnlyList<IReadOnlyList<KeyValuePair<string, string>>> runs, bool all)
    {
        var byRun = runs.Select(r => r.ToDictionary(k => k.Key, k => k.Value, StringComparer.Ordinal)).ToList();
        // Keys in the order they first appear, grouped by stage (run-level keys first): a key only a later run has
        // (a new param, a stage the first run lacks) stays with its stage.
        var first = new Dictionary<string, int>(StringComparer.Ordinal);
        var stages = new Dictionary<string, int>(StringComparer.Ordinal) { [""] = -1 };
        foreach (var key in runs.SelectMany(r => r.Select(k => k.Key)))
        {
            first.TryAdd(key, first.Count);
            stages.TryAdd(StageOf(key), stages.Count);
        }
        return [.. first.Keys.OrderBy(k => stages[StageOf(k)]).ThenBy(k => first[k])
            .Select(k => new ComparedValue(k, [.. byRun.Select(r => r.GetValueOrDefault(k))]))
            .Where(c => all || c.Differs)];
    }

    /// <summary>The group a key belongs to: its stage, or "" for run-level keys.</summary>
    public static string StageOf(string key)
    {
        var dot = key.IndexOf('.', StringComparison.Ordinal);
        return dot < 0 ? "" : key[..dot];
    }

    private static void Flatten(JsonNode? node, string path, List<KeyValuePair<string, string>> into)
    {
        switch (node)
        {
            case null:
                break;
            case JsonObject o:
                foreach (var (k, v) in o) Flatten(v ?? JsonValue.Create("null"), $"{path}.{k}", into);
                break;
            case JsonArray a when a.Any(e => e is JsonObject or JsonArray):
                for (var i = 0; i < a.Count; i++) Flatten(a[i] ?? JsonValue.Create("null"), $"{path}[{i}]", into);
                break;
            case JsonArray a:
                into.Add(new(path, a.ToJsonString()));
                break;
            case JsonValue v when v.GetValueKind() == JsonValueKind.String:
                into.Add(new(path, v.GetValue<string>()));
                break;
            default:
                into.Add(new(path, node.ToJsonString()));
                break;
        }
    }
}
