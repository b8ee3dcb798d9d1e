using Bunit;
using Pipeline.Jobs.RunStore;
using Pipeline.Jobs.Runs;
using Pipeline.Web.Components.Controls;

namespace Pipeline.Web.Tests.Components;

public class StagePanelTests : DashboardContext
{
    private static readonly StageDetail Train = new(7, "rgc", "train", "gpu", StageStatus.Running, 1, 0.5, null, "vm:1", null, null, null,
        DateTime.UtcNow, null, DateTime.UtcNow, ["shards"], null, [], [], null);

    private static MetricPointView Point(int id, string name, long? step, double value) => new(id, Train.Id, name, step, value, DateTime.UtcNow);

    [Fact]
    public void Curves_get_charts_grouped_as_the_training_curves_and_a_metric_reported_once_is_a_number()
    {
        RenderPopoverHost();
        IReadOnlyList<MetricPointView> points =
        [
            Point(1, "train_loss", 10, 1.3), Point(2, "train_loss", 20, 1.1), Point(3, "eval_loss", 20, 1.2),
            Point(4, "images_per_second", 20, 410), Point(5, "images_per_second", 30, 415),
            Point(6, "stage.seconds", null, 21.94),
        ];

        var panel = Render<StagePanel>(p => p.Add(s => s.Stage, Train).Add(s => s.Metrics, points));

        var charts = panel.FindAll("[data-testid=metric-chart]").Select(c => c.GetAttribute("data-chart")).ToList();
        Assert.Equal(["loss", "throughput"], charts);
        Assert.Equal("3", panel.Find("[data-testid=metric-chart][data-chart=loss]").GetAttribute("data-points"));
        var value = Assert.Single(panel.FindAll("[data-testid=stage-value]"));
        Assert.Equal("stage.seconds", value.GetAttribute("data-metric"));
        Assert.Contains("21.9", value.TextContent, StringComparison.Ordinal);
    }
}
