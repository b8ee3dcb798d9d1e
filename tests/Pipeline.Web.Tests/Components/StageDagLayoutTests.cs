using Pipeline.Jobs.RunStore;
using Pipeline.Web.Components.Controls;

namespace Pipeline.Web.Tests.Components;

public class StageDagLayoutTests
{
    private static DagNode Node(string name, params string[] after) => new(name, after, StageStatus.Pending, "probe");

    [Fact]
    public void A_stage_sits_one_layer_after_its_deepest_dependency()
    {
        // shards → train → sweep, and report after shards and sweep: report must be in layer 3, not 1.
        var layout = StageDagLayout.Compute([Node("shards"), Node("train", "shards"), Node("sweep", "train"), Node("report", "shards", "sweep")]);

        var layer = layout.Nodes.ToDictionary(n => n.Node.Name, n => n.Layer);
        Assert.Equal(new Dictionary<string, int> { ["shards"] = 0, ["train"] = 1, ["sweep"] = 2, ["report"] = 3 }, layer);
        Assert.Equal(4, layout.Edges.Count);
        Assert.All(layout.Edges, e => Assert.True(layer[e.From] < layer[e.To]));
    }

    [Fact]
    public void No_two_stage_boxes_overlap_and_all_lie_inside_the_drawing()
    {
        var nodes = new List<DagNode> { Node("a") };
        for (var i = 0; i < 6; i++) nodes.Add(Node($"b{i}", "a"));
        for (var i = 0; i < 6; i++) nodes.Add(Node($"c{i}", $"b{i}", $"b{(i + 3) % 6}"));
        nodes.Add(Node("d", [.. Enumerable.Range(0, 6).Select(i => $"c{i}")]));

        var layout = StageDagLayout.Compute(nodes);

        Assert.Equal(nodes.Count, layout.Nodes.Count);
        foreach (var a in layout.Nodes)
        {
            Assert.InRange(a.X, 0, layout.Width - a.Width);
            Assert.InRange(a.Y, 0, layout.Height - a.Height);
            foreach (var b in layout.Nodes.Where(b => !ReferenceEquals(a, b)))
            {
                var overlap = a.X < b.Right && b.X < a.Right && a.Y < b.Bottom && b.Y < a.Bottom;
                Assert.False(overlap, $"{a.Node.Name} overlaps {b.Node.Name}");
            }
        }
    }

    [Fact]
    public void Barycentre_ordering_removes_the_crossings_of_the_given_order()
    {
        // Given order: top row x1 x2, but x1 feeds y2 and x2 feeds y1 (listed y1 first): one crossing as given.
        var nodes = new[] { Node("x1"), Node("x2"), Node("y1", "x2"), Node("y2", "x1") };
        var asGiven = StageDagLayout.Crossings([["x1", "x2"], ["y1", "y2"]],
            new Dictionary<string, List<string>> { ["x1"] = [], ["x2"] = [], ["y1"] = ["x2"], ["y2"] = ["x1"] });

        var layout = StageDagLayout.Compute(nodes);

        Assert.Equal(1, asGiven);
        Assert.Equal(0, layout.Crossings);
        var order = layout.Nodes.Where(n => n.Layer == 1).OrderBy(n => n.Y).Select(n => n.Node.Name).ToList();
        Assert.Equal(["y2", "y1"], order);
    }

    [Fact]
    public void Each_status_gets_its_own_fill_colour()
    {
        var fills = Enum.GetValues<StageStatus>().Select(StatusColors.Fill).ToList();
        Assert.Equal(fills.Count, fills.Distinct().Count());
    }

    [Fact]
    public void Dependencies_on_stages_not_drawn_and_self_loops_are_left_out()
    {
        var layout = StageDagLayout.Compute([Node("a", "missing"), Node("b", "b", "a")]);

        Assert.Equal([0, 1], layout.Nodes.OrderBy(n => n.Node.Name).Select(n => n.Layer));
        Assert.Single(layout.Edges);
    }
}
