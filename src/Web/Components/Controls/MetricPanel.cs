using Pipeline.Jobs.Runs;

namespace Pipeline.Web.Components.Controls;

/// <summary>One chart of the Run page: the metrics it draws (as the stages name them), its axis unit and scale.</summary>
public sealed record MetricPanel(string Key, string Title, string Unit, IReadOnlySet<string> Metrics, bool LogScale = false)
{
    /// <summary>The train stage's live metrics, grouped as the training curves group them; other stages' metrics get a panel each.</summary>
    public static readonly IReadOnlyList<MetricPanel> Known =
    [
        new("loss", "loss", "cross-entropy loss (nats)", new HashSet<string> { "train_loss", "eval_loss" }),
        new("top1", "accuracy", "accuracy (fraction)", new HashSet<string> { "train_accuracy", "eval_top1", "eval_top5" }),
        new("learning-rate", "learning rate", "learning rate", new HashSet<string> { "learning_rate" }, LogScale: true),
        new("throughput", "throughput", "images/s", new HashSet<string> { "images_per_second" }),
    ];

    /// <summary>
    /// The panels for a stage's points: the known ones with any of their metrics first, then one per other metric that
    /// has a curve (two points or more). A metric reported once (a stage's wall time) is a number, not a chart:
    /// <paramref name="values"/> holds those, by name.
    /// </summary>
    public static IReadOnlyList<MetricPanel> For(IEnumerable<MetricPointView> points, out IReadOnlyList<MetricPointView> values)
    {
        var byName = points.GroupBy(p => p.Name, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
        var panels = Known.Where(k => k.Metrics.Any(byName.ContainsKey)).ToList();
        var covered = Known.SelectMany(k => k.Metrics).ToHashSet(StringComparer.Ordinal);
        var others = byName.Where(m => !covered.Contains(m.Key)).OrderBy(m => m.Key, StringComparer.Ordinal).ToList();
        panels.AddRange(others.Where(m => m.Value.Count > 1)
            .Select(m => new MetricPanel(m.Key.Replace('.', '-').Replace('_', '-'), m.Key, m.Key, new HashSet<string> { m.Key })));
        values = [.. others.Where(m => m.Value.Count == 1).Select(m => m.Value[0])];
        return panels;
    }
}
