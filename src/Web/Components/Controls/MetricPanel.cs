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

    /// <summary>The panels with at least one of <paramref name="names"/>: the known ones first, then one per other metric.</summary>
    public static IReadOnlyList<MetricPanel> For(IEnumerable<string> names)
    {
        var present = names.ToHashSet(StringComparer.Ordinal);
        var panels = Known.Where(k => k.Metrics.Overlaps(present)).ToList();
        var covered = Known.SelectMany(k => k.Metrics).ToHashSet(StringComparer.Ordinal);
        panels.AddRange(present.Where(n => !covered.Contains(n)).Order(StringComparer.Ordinal)
            .Select(n => new MetricPanel(n.Replace('.', '-').Replace('_', '-'), n, n, new HashSet<string> { n })));
        return panels;
    }
}
