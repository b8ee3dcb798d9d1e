using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Pipeline.Jobs.Runs;

/// <summary>One figure a user reads first: <c>Text</c> as printed ("top-1 88.1 %"), <c>Key</c> the fact it came from,
/// <c>Value</c> its number when it has one (a fraction stays a fraction).</summary>
public sealed record Headline(string Key, string Text, double? Value = null);

/// <summary>A run's one headline for lists: the best of its headline figures and the stage it belongs to.</summary>
public sealed record RunHeadline(string Stage, string Key, string Text, double? Value);

/// <summary>
/// The headline numbers of each stage kind, defined here once for every command (`run --wait`, `runs list`) and the
/// API. A stage's facts are what it already reports — its result summary in the run store, and its metrics.json when
/// the caller has read it (<see cref="Facts"/>). Facts are read leniently: a key that is missing, null, NaN or of an
/// unexpected type is left out of the headline, never an error, so a stage kind whose summary grows or changes (or one
/// written after this class) still prints what it has. A kind without a rule, or whose rule finds none of its keys,
/// shows its summary's first scalar values.
/// </summary>
public static class Headlines
{
    /// <summary>How many summary values a stage kind without a rule shows.</summary>
    public const int GenericLimit = 6;

    private static readonly Dictionary<string, Func<JsonObject, IEnumerable<Headline>>> Rules = new(StringComparer.Ordinal)
    {
        ["train"] = Train,
        ["timestep-sweep"] = TimestepSweep,
        ["neural-fit"] = NeuralFit,
        ["virtual-monkey"] = VirtualMonkey,
        ["shard"] = Shard,
        ["search"] = Search,
        ["leaderboard"] = Leaderboard,
    };

    /// <summary>The figures that can stand for a whole run, in order of preference (<see cref="OfRun"/>).</summary>
    private static readonly (string Kind, string Key)[] RunHeadlineFigures = [("train", "top1"), ("timestep-sweep", "peak_top1")];

    /// <summary>
    /// A stage's facts: the values of its metrics.json (when read), then the summary's keys that metrics.json lacks.
    /// metrics.json goes first because it holds the unrounded numbers and more of them (e.g. a train stage's classes).
    /// </summary>
    public static JsonObject Facts(JsonNode? summary, JsonNode? metrics = null)
    {
        var facts = new JsonObject();
        foreach (var source in new[] { metrics, summary })
        {
            if (source is not JsonObject o) continue;
            foreach (var (key, value) in o)
            {
                if (!facts.ContainsKey(key)) facts[key] = value?.DeepClone();
            }
        }
        return facts;
    }

    /// <summary>The headline figures of one stage, in reading order; empty when it reported nothing.</summary>
    public static IReadOnlyList<Headline> Of(string kind, JsonObject? facts)
    {
        if (facts is null || facts.Count == 0) return [];
        var figures = Rules.TryGetValue(kind, out var rule) ? [.. rule(facts)] : new List<Headline>();
        return figures.Count > 0 ? figures : [.. Generic(facts).Take(GenericLimit)];
    }

    /// <summary>
    /// The run's headline: the best top-1 of its train stages, else the best peak of its time-step sweeps, else the first
    /// figure of its last stage that has one; null when no stage reported anything.
    /// </summary>
    public static RunHeadline? OfRun(IEnumerable<(string Stage, string Kind, JsonObject? Facts)> stages)
    {
        var all = stages.Select(s => (s.Stage, s.Kind, Figures: Of(s.Kind, s.Facts))).Where(s => s.Figures.Count > 0).ToList();
        foreach (var (kind, key) in RunHeadlineFigures)
        {
            var best = all.Where(s => s.Kind == kind)
                .Select(s => (s.Stage, Figure: s.Figures.FirstOrDefault(f => f.Key == key && f.Value is not null)))
                .Where(s => s.Figure is not null).OrderByDescending(s => s.Figure!.Value).FirstOrDefault();
            if (best.Figure is not null) return Pick(best.Stage, best.Figure);
        }
        return all.Count == 0 ? null : Pick(all[^1].Stage, all[^1].Figures[0]);

        static RunHeadline Pick(string stage, Headline h) => new(stage, h.Key, h.Text, h.Value);
    }

    // train: top-1; top-5 only where it says something (more than five classes); the parameter count.
    private static IEnumerable<Headline> Train(JsonObject f)
    {
        if (Number(f, "top1") is { } top1) yield return new("top1", $"top-1 {Percent(top1)}", top1);
        if (Number(f, "classes") is > 5 && Number(f, "top5") is { } top5) yield return new("top5", $"top-5 {Percent(top5)}", top5);
        if (Number(f, "parameters") is { } parameters) yield return new("parameters", $"{Compact(parameters)} parameters", parameters);
    }

    // timestep-sweep: the peak accuracy over readout steps, where it is, and the training presentation's length.
    private static IEnumerable<Headline> TimestepSweep(JsonObject f)
    {
        if (Number(f, "peak_top1") is { } peak)
        {
            yield return new("peak_top1", $"peak top-1 {Percent(peak)}{(Number(f, "peak_step") is { } step ? $" at step {Count(step)}" : "")}", peak);
        }
        else if (Number(f, "peak_step") is { } step)
        {
            yield return new("peak_step", $"peak at step {Count(step)}", step);
        }
        if (Number(f, "training_steps") is { } steps) yield return new("training_steps", $"trained with {Count(steps)} steps", steps);
    }

    // neural-fit: per area, the best layer and its noise-corrected (ceiled) score; a virtual monkey's answer when it differs.
    private static IEnumerable<Headline> NeuralFit(JsonObject f)
    {
        if (f["areas"] is not JsonObject areas) yield break;
        foreach (var (area, node) in areas)
        {
            if (node is not JsonObject a || Text(a, "best_layer") is not { } layer) continue;
            var score = Number(a, "noise_corrected");
            var notes = new List<string>();
            if (score is { } s) notes.Add($"ceiled r {s:0.00}");
            if (Bool(a, "matches_generating_layer") is false && Text(a, "generating_layer") is { } truth) notes.Add($"generated from {truth}");
            yield return new($"areas.{area}", $"{area} ← {layer}{(notes.Count == 0 ? "" : $" ({string.Join("; ", notes)})")}", score);
        }
    }

    // virtual-monkey: how much data it made and which layer each area reads.
    private static IEnumerable<Headline> VirtualMonkey(JsonObject f)
    {
        if (Number(f, "stimuli") is { } stimuli) yield return new("stimuli", $"{Count(stimuli)} stimuli", stimuli);
        if (Number(f, "sites") is { } sites) yield return new("sites", $"{Count(sites)} sites", sites);
        if (f["areas"] is JsonObject areas)
        {
            foreach (var (area, node) in areas)
            {
                if (node is JsonObject a && Text(a, "layer") is { } layer) yield return new($"areas.{area}", $"{area} ← {layer}");
            }
        }
    }

    // shard: the dataset's size.
    private static IEnumerable<Headline> Shard(JsonObject f)
    {
        if (Number(f, "classes") is { } classes) yield return new("classes", $"{Count(classes)} classes", classes);
        if (Number(f, "train") is { } train) yield return new("train", $"{Count(train)} train", train);
        if (Number(f, "val") is { } val) yield return new("val", $"{Count(val)} val images", val);
        if (Number(f, "shards") is { } shards) yield return new("shards", $"{Count(shards)} shards", shards);
        if (Number(f, "skipped") is > 0 and var skipped) yield return new("skipped", $"{Count(skipped)} skipped", skipped);
    }

    private static readonly string[] TrialOutcomes = ["completed", "pruned", "failed"];

    // search: how its trials ended and which was best.
    private static IEnumerable<Headline> Search(JsonObject f)
    {
        if (Number(f, "trials") is { } trials)
        {
            var ended = TrialOutcomes.Select(k => (k, n: Number(f, k))).Where(x => x.n is > 0).Select(x => $"{Count(x.n!.Value)} {x.k}");
            yield return new("trials", $"{Count(trials)} trials ({string.Join(", ", ended)})", trials);
        }
        if (Number(f, "best_trial") is { } best) yield return new("best_trial", $"best trial {Count(best)}", best);
    }

    // leaderboard: the best trial's objective beside the worst completed one's, and how the rest ended.
    private static IEnumerable<Headline> Leaderboard(JsonObject f)
    {
        var metric = Text(f, "metric") ?? "objective";
        string Show(double v) => Metric(metric, v);
        if (Number(f, "best_objective") is { } best)
            yield return new("best_objective", $"best {metric} {Show(best)}{(Number(f, "best_trial") is { } t ? $" (trial {Count(t)})" : "")}", best);
        if (Number(f, "worst_objective") is { } worst) yield return new("worst_objective", $"worst {Show(worst)}", worst);
        if (Number(f, "completed") is { } completed) yield return new("completed", $"{Count(completed)} completed", completed);
        if (Number(f, "pruned") is > 0 and var pruned) yield return new("pruned", $"{Count(pruned)} pruned", pruned);
        if (Number(f, "failed") is > 0 and var failed) yield return new("failed", $"{Count(failed)} failed", failed);
        if (Number(f, "pareto_front") is { } front) yield return new("pareto_front", $"{Count(front)} on the Pareto front", front);
    }

    private static IEnumerable<Headline> Generic(JsonObject f)
    {
        foreach (var (key, node) in f)
        {
            if (node is not JsonValue) continue;
            if (Number(f, key) is { } n)
            {
                yield return new(key, $"{key} {(LooksLikeFraction(key) && n is >= 0 and <= 1 ? Percent(n) : Plain(n))}", n);
            }
            else if (Text(f, key) is { Length: > 0 and <= 60 } s) yield return new(key, $"{key} {s}");
            else if (Bool(f, key) is { } b) yield return new(key, $"{key} {(b ? "yes" : "no")}");
        }
    }

    /// <summary>A metric's value as printed: accuracies (top1, top5, …) as percentages, anything else as a plain number.</summary>
    public static string Metric(string name, double value) => LooksLikeFraction(name) && value is >= 0 and <= 1 ? Percent(value) : Plain(value);

    private static bool LooksLikeFraction(string key) =>
        key.Contains("top1", StringComparison.Ordinal) || key.Contains("top5", StringComparison.Ordinal) || key.Contains("accuracy", StringComparison.Ordinal);

    /// <summary>A finite number, or null for anything else (missing, null, a string such as "NaN", an object).</summary>
    public static double? Number(JsonObject o, string key) =>
        o.TryGetPropertyValue(key, out var n) && n is JsonValue v && v.GetValueKind() == JsonValueKind.Number &&
        double.TryParse(v.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && double.IsFinite(d) ? d : null;

    private static string? Text(JsonObject o, string key) =>
        o.TryGetPropertyValue(key, out var n) && n is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null;

    private static bool? Bool(JsonObject o, string key) =>
        o.TryGetPropertyValue(key, out var n) && n is JsonValue v && v.GetValueKind() is JsonValueKind.True or JsonValueKind.False ? v.GetValue<bool>() : null;

    /// <summary>A fraction as a percentage with one decimal: 0.8812 → "88.1 %".</summary>
    public static string Percent(double fraction) => $"{fraction * 100:0.0} %";

    /// <summary>A count with thousands separators: 8192 → "8,192".</summary>
    public static string Count(double n) => n.ToString(n == Math.Floor(n) ? "N0" : "0.###", CultureInfo.InvariantCulture);

    /// <summary>Large counts in k / M / G: 1234567 → "1.23 M"; below 10,000 as they are.</summary>
    public static string Compact(double n) => Math.Abs(n) switch
    {
        < 10_000 => Count(n),
        < 1_000_000 => $"{n / 1e3:0.#} k",
        < 1_000_000_000 => $"{n / 1e6:0.##} M",
        _ => $"{n / 1e9:0.##} G",
    };

    private static string Plain(double n) => n == Math.Floor(n) && Math.Abs(n) < 1e15 ? Count(n) : n.ToString("0.####", CultureInfo.InvariantCulture);
}
