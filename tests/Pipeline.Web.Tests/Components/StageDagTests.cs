using Bunit;
using Pipeline.Jobs.RunStore;
using Pipeline.Web.Components.Controls;

namespace Pipeline.Web.Tests.Components;

public class StageDagTests : DashboardContext
{
    private static readonly IReadOnlyList<DagNode> Probe =
    [
        new("source", [], StageStatus.Succeeded, "probe"),
        new("left", ["source"], StageStatus.Failed, "probe"),
        new("right", ["source"], StageStatus.Running, "probe", Progress: 0.4),
        new("join", ["left", "right"], StageStatus.Blocked, "probe"),
    ];

    [Fact]
    public void Renders_one_box_per_stage_with_its_status_colour_and_layer()
    {
        var dag = Render<StageDag>(p => p.Add(d => d.Nodes, Probe));

        var nodes = dag.FindAll("[data-testid=stage-node]");
        Assert.Equal(["source", "left", "right", "join"], nodes.Select(n => n.GetAttribute("data-stage")).OrderBy(Order));
        foreach (var n in Probe)
        {
            var box = dag.Find($"[data-testid=stage-node][data-stage={n.Name}]");
            Assert.Equal(n.Status.ToString().ToLowerInvariant(), box.GetAttribute("data-status"));
            Assert.Equal(StatusColors.Fill(n.Status), box.QuerySelector("rect")!.GetAttribute("fill"));
        }
        Assert.Equal("2", dag.Find("[data-stage=join]").GetAttribute("data-layer"));
        Assert.Equal(4, dag.FindAll("[data-testid=stage-edge]").Count);
    }

    [Fact]
    public void Clicking_a_stage_box_selects_that_stage()
    {
        DagNode? selected = null;
        var dag = Render<StageDag>(p => p.Add(d => d.Nodes, Probe).Add(d => d.OnSelect, n => selected = n));

        dag.Find("[data-testid=stage-node][data-stage=right]").Click();

        Assert.Equal("right", selected?.Name);
    }

    [Fact]
    public void The_selected_stage_is_marked()
    {
        var dag = Render<StageDag>(p => p.Add(d => d.Nodes, Probe).Add(d => d.Selected, "left"));

        Assert.Contains("selected", dag.Find("[data-stage=left]").GetAttribute("class"));
        Assert.DoesNotContain("selected", dag.Find("[data-stage=right]").GetAttribute("class"));
    }

    private static int Order(string? name) => Probe.Select(p => p.Name).ToList().IndexOf(name!);
}
