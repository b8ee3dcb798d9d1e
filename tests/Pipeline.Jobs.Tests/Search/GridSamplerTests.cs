using Pipeline.Jobs.Search;
using static Pipeline.Jobs.Tests.Search.SearchSpaceTests;

namespace Pipeline.Jobs.Tests.Search;

public sealed class GridSamplerTests
{
    [Fact]
    public void Grid_enumerates_the_full_product_once_in_nested_loop_order_then_stops()
    {
        var grid = new GridSampler(Parse("""
            { "optimizer.kind": { "kind": "choice", "values": ["sgd", "adam"] },
              "model.width": { "kind": "uniform", "low": 0.5, "high": 1.5, "grid": 3 },
              "train.batch_size": { "kind": "int", "low": 32, "high": 64, "step": 32 } }
            """));
        var history = new List<Trial>();

        while (grid.Propose(history, []) is { } next) history.Add(new Trial(next, TrialStatus.Completed, 0));

        Assert.Equal(2 * 3 * 2, history.Count);
        Assert.Equal(history.Count, history.Select(t => t.Assignment.ToString()).Distinct().Count());
        Assert.Equal("optimizer.kind=\"sgd\", model.width=0.5, train.batch_size=32", history[0].Assignment.ToString());
        Assert.Equal("optimizer.kind=\"sgd\", model.width=0.5, train.batch_size=64", history[1].Assignment.ToString());
        Assert.Equal("optimizer.kind=\"sgd\", model.width=1, train.batch_size=32", history[2].Assignment.ToString());
        Assert.Equal("optimizer.kind=\"adam\", model.width=1.5, train.batch_size=64", history[^1].Assignment.ToString());
    }

    [Fact]
    public void An_inactive_parameter_does_not_multiply_the_grid_and_running_points_are_skipped()
    {
        var grid = new GridSampler(Parse("""
            { "cell.type": { "kind": "choice", "values": ["rgc", "none"] },
              "cell.gate_bias": { "kind": "uniform", "low": -1, "high": 1, "grid": 3, "when": { "path": "cell.type", "in": ["rgc"] } } }
            """));

        Assert.Equal(["cell.type=\"rgc\", cell.gate_bias=-1", "cell.type=\"rgc\", cell.gate_bias=0", "cell.type=\"rgc\", cell.gate_bias=1", "cell.type=\"none\""],
            grid.Points().Select(p => p.ToString()));
        var failed = new Trial(grid.Points()[0], TrialStatus.Failed);
        Assert.Equal(grid.Points()[2].ToString(), grid.Propose([failed], [grid.Points()[1]])!.ToString());
    }

    [Fact]
    public void A_log_uniform_grid_is_log_spaced_and_an_int_grid_count_picks_even_steps()
    {
        var grid = new GridSampler(Parse("""
            { "lr": { "kind": "log_uniform", "low": 1e-4, "high": 1, "grid": 5 },
              "depth": { "kind": "int", "low": 0, "high": 100, "step": 10, "grid": 3 } }
            """));

        var lrs = grid.Points().Select(p => p.Number("lr")).Distinct().ToList();
        Assert.Equal([1e-4, 1e-3, 1e-2, 1e-1, 1], lrs, (a, b) => Math.Abs(Math.Log10(a) - Math.Log10(b)) < 1e-9);
        Assert.Equal([0.0, 50, 100], grid.Points().Select(p => p.Number("depth")).Distinct());
    }

    [Fact]
    public void Grid_refuses_a_uniform_without_a_grid_count_and_says_how_to_give_one()
    {
        var space = Parse("""{ "optimizer.learning_rate": { "kind": "log_uniform", "low": 1e-4, "high": 0.1 } }""");

        var error = Assert.Single(GridSampler.Validate(space));
        Assert.Equal("space[\"optimizer.learning_rate\"].grid", error.Field);
        Assert.Contains("a grid search needs a grid count for a log_uniform parameter", error.Message, StringComparison.Ordinal);
        var thrown = Assert.Throws<ArgumentException>(() => new GridSampler(space));
        Assert.Contains(error.ToString(), thrown.Message, StringComparison.Ordinal);
    }
}
