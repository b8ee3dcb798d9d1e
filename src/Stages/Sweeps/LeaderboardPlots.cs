using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Pipeline.Stages.Reporting;

namespace Pipeline.Stages.Sweeps;

/// <summary>
/// The leaderboard's figures, over the completed trials with a finite objective (a top-1 or top-5 objective in %):
/// <c>pareto</c>, the objective against the parameter count (log axis) with the Pareto front as a staircase, its trials
/// tagged; and per searched parameter <c>objective_vs_{path}</c>, the objective against that parameter's value — a
/// log axis for a <c>log_uniform</c> parameter, integer ticks for an <c>int</c>, the values in the space's order as
/// categories for a <c>choice</c> — with the best trial marked. A trial where the parameter was inactive is not drawn.
/// </summary>
public static class LeaderboardPlots
{
    public const string Pareto = "pareto";
    public const string ParameterPrefix = "objective_vs_";

    public static IEnumerable<SweepPlots.Rendered> All(Leaderboard board, JsonObject space)
    {
        yield return ParetoFigure(board);
        foreach (var (path, name) in FileNames(board.Searched)) yield return ParameterFigure(board, space, path, name);
    }

    /// <summary>
    /// Each searched path's figure name: <c>objective_vs_</c> and the path in lower case with every run of other characters
    /// than letters and digits as one '_' (<c>model.spec.layers[2].cell.type</c> → <c>objective_vs_model_spec_layers_2_cell_type</c>);
    /// a name already taken gets <c>_2</c>, <c>_3</c>, ….
    /// </summary>
    public static IReadOnlyList<(string Path, string Name)> FileNames(IEnumerable<string> paths)
    {
        var taken = new HashSet<string>(StringComparer.Ordinal);
        var names = new List<(string, string)>();
        foreach (var path in paths)
        {
            var stem = ParameterPrefix + Sanitise(path);
            var name = stem;
            for (var n = 2; !taken.Add(name); n++) name = $"{stem}_{n}";
            names.Add((path, name));
        }
        return names;
    }

    private static string Sanitise(string path)
    {
        var sb = new StringBuilder();
        foreach (var c in path.ToLowerInvariant())
        {
            if (char.IsAsciiLetterOrDigit(c)) sb.Append(c);
            else if (sb.Length > 0 && sb[^1] != '_') sb.Append('_');
        }
        var name = sb.ToString().TrimEnd('_');
        return name.Length == 0 ? "parameter" : name;
    }

    /// <summary>The objective's axis label and the factor its values are drawn at (100 for an accuracy in %).</summary>
    public static (string Label, double Scale) Axis(LeaderboardObjective objective)
    {
        var metric = objective.Metric;
        if (metric == "top1") return ("top-1 accuracy (%)", 100);
        if (metric == "top5") return ("top-5 accuracy (%)", 100);
        if (metric.Contains("top1", StringComparison.Ordinal) || metric.Contains("top5", StringComparison.Ordinal)) return ($"{metric} (accuracy, %)", 100);
        return ($"{metric} ({(objective.Maximize ? "higher" : "lower")} is better)", 1);
    }

    /// <summary>An objective value as the figures and the log show it: "72.4 %" for an accuracy, else 3 significant digits.</summary>
    public static string Show(LeaderboardObjective objective, double? value)
    {
        if (value is not { } v) return "–";
        if (!double.IsFinite(v)) return v.ToString(CultureInfo.InvariantCulture);
        return Axis(objective).Scale == 100 ? (100 * v).ToString("0.0", CultureInfo.InvariantCulture) + " %" : LinePanel.Format(v);
    }

    private static List<LeaderboardRow> Completed(Leaderboard board) => [.. board.Rows.Where(r => r.Status == "completed" && r.HasObjective)];

    private static SweepPlots.Rendered ParetoFigure(Leaderboard board)
    {
        var (label, scale) = Axis(board.Objective);
        var drawn = Completed(board).Where(r => r.Parameters is > 0).ToList();
        var front = board.ParetoFront.ToHashSet();
        var panel = new LinePanel($"{drawn.Count} of {board.Rows.Count} trials completed with a parameter count", "parameters (log scale)", label) { Size = (760, 460) }
            .LogX()
            .Points($"completed trials ({drawn.Count})", drawn.Select(r => ((double)r.Parameters!.Value, scale * r.Objective!.Value, front.Contains(r.Trial) ? $"#{r.Trial}" : null)))
            .StepLine($"Pareto front ({front.Count} trials)", drawn.Where(r => front.Contains(r.Trial)).Select(r => ((double)r.Parameters!.Value, scale * r.Objective!.Value)));
        var title = $"search {board.Search}: {board.Objective.Metric} ({board.Objective.Direction}) vs parameter count";
        return Render(Pareto, title, panel);
    }

    private static SweepPlots.Rendered ParameterFigure(Leaderboard board, JsonObject space, string path, string name)
    {
        var (label, scale) = Axis(board.Objective);
        var parameter = space[path] as JsonObject;
        var kind = parameter?["kind"] is JsonValue k && k.GetValueKind() == JsonValueKind.String ? k.GetValue<string>() : null;
        var active = Completed(board).Where(r => r.Assignment.ContainsKey(path)).ToList();
        var values = active.Select(r => r.Assignment[path]).ToList();
        // A choice is categorical even when its values are numbers (widths 32, 64, 128 are three options, not a scale);
        // any other parameter is numeric when every value drawn is a number.
        var categorical = kind == "choice" || values.Any(v => v?.GetValueKind() != JsonValueKind.Number);

        var panel = new LinePanel($"{active.Count} completed trials with {path} active", path + (kind == "log_uniform" && !categorical ? " (log scale)" : ""), label) { Size = (760, 460) };
        Func<JsonNode?, double> x;
        if (categorical)
        {
            var categories = new List<JsonNode?>();
            if (parameter?["values"] is JsonArray listed) categories.AddRange(listed);
            foreach (var v in values.Where(v => !categories.Any(c => SameValue(c, v)))) categories.Add(v);
            panel.CategoryX([.. categories.Select(Leaderboard.Value)]);
            x = v => categories.FindIndex(c => SameValue(c, v));
        }
        else
        {
            if (kind == "log_uniform") panel.LogX();
            if (kind == "int") panel.IntegerX();
            x = v => v!.GetValue<double>();
        }
        panel.Points($"completed trials ({active.Count})", active.Select(r => (x(r.Assignment[path]), scale * r.Objective!.Value)));
        if (board.Best is { } best && best.Assignment.TryGetPropertyValue(path, out var value))
            panel.Points($"best: trial #{best.Trial}", [(x(value), scale * best.Objective!.Value, $"#{best.Trial}")]);
        var title = $"search {board.Search}: {board.Objective.Metric} vs {path}";
        return Render(name, title, panel);
    }

    /// <summary>Two values of a choice are the same: numbers by their value (3 = 3.0), anything else by its JSON.</summary>
    private static bool SameValue(JsonNode? a, JsonNode? b) =>
        a?.GetValueKind() == JsonValueKind.Number && b?.GetValueKind() == JsonValueKind.Number
            ? a.GetValue<double>() == b.GetValue<double>()
            : JsonNode.DeepEquals(a, b);

    private static SweepPlots.Rendered Render(string name, string title, LinePanel panel)
    {
        var figure = new Figure(title, panel);
        return new SweepPlots.Rendered(name, figure.Png(), figure.Svg());
    }
}
