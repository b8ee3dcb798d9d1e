using System.Text.Json.Nodes;
using Pipeline.Jobs.Runs;
using Pipeline.Stages.NeuralFit;
using Pipeline.Stages.Reporting;
using Pipeline.Stages.Sweeps;
using Pipeline.Web.Components.Controls;
using Plotly.Blazor.Traces;

namespace Pipeline.Web.Tests.Components;

/// <summary>The Compare page's charts are built from the stages' structured outputs as a reader expects them.</summary>
public class CompareFiguresTests
{
    private static readonly StageRef Fit = new(3, "smoke", "rgc-neural");

    private static AreaBestLayer Best(string area, string layer, params (string Layer, double Score)[] byLayer) =>
        new(area, "pls", layer, byLayer.Max(b => b.Score), byLayer.ToDictionary(b => b.Layer, b => (double?)b.Score), null, "noise_corrected", 0.1, []);

    private static readonly NeuralFitResult Neural = new(Fit, "rgc-shallow",
        [Best("V4", "conv3", ("conv3", 0.78), ("conv4", 0.59), ("conv5", 0.51)), Best("IT", "conv5", ("conv3", 0.56), ("conv4", 0.75), ("conv5", 0.94))],
        [
            new TemporalProfile("V4", "pls", "conv3", [new(70, 80, 0.9, 0.7, 0.05, "conv3", 0.7, false), new(80, 90, 0.02, null, null, "conv3", null, true), new(90, 100, 0.9, 0.8, 0.05, "conv3", 0.8, false)]),
            new TemporalProfile("IT", "pls", "conv5", [new(70, 80, 0.9, 0.6, 0.05, "conv5", 0.6, false)]),
        ]);

    [Fact]
    public void The_layer_area_map_holds_every_layer_s_score_per_area_in_layer_order()
    {
        var figure = CompareFigures.LayerAreaMap(Neural);

        var heatmap = Assert.IsType<HeatMap>(Assert.Single(figure.Data));
        Assert.Equal(["V4", "IT"], heatmap.X!.Cast<string>());
        Assert.Equal(["conv3", "conv4", "conv5"], heatmap.Y!.Cast<string>());
        var rows = heatmap.Z!.Cast<IList<object?>>().ToList();
        Assert.Equal([0.59, 0.75], rows[1].Cast<double?>());
        Assert.Equal(6, figure.Points);
    }

    [Fact]
    public void Predictivity_over_time_leaves_out_bins_below_the_minimum_ceiling()
    {
        var figure = CompareFigures.PredictivityOverTime([Neural]);

        var v4 = Assert.IsType<Scatter>(figure.Data[0]);
        Assert.Equal("#3 rgc-neural V4 (conv3)", v4.Name);
        Assert.Equal([70.0, 90.0], v4.X!.Cast<double>());
        Assert.Equal(3, figure.Points);
        Assert.Contains("noise_corrected", figure.Layout.Title!.Text, StringComparison.Ordinal);
    }

    [Fact]
    public void Best_layers_are_set_beside_the_paper_s_layers_for_the_model_family()
    {
        var rows = CompareFigures.BestLayers([Neural, Neural with { Model = "basenet" }], PaperReference.Load());

        Assert.Equal([true, true, null, null], rows.Select(r => r.AsInPaper));
        Assert.Equal(["conv4", "conv5"], rows[1].PaperLayers);
    }

    [Fact]
    public void The_pareto_figure_draws_the_front_through_its_trials_fewest_parameters_first_and_skips_trials_without_an_objective()
    {
        LeaderboardRow Row(int trial, string status, double? objective, long? parameters) =>
            new() { Trial = trial, Status = status, Objective = objective, Parameters = parameters, Assignment = new JsonObject(), Stages = [$"trial-{trial}"] };
        var board = new Leaderboard
        {
            Search = "search",
            Strategy = "tpe",
            Objective = new("train", "top1", "maximize"),
            Counts = new Dictionary<string, int>(),
            Searched = [],
            ParetoFront = [4, 1],
            Rows = [Row(1, "completed", 0.9, 5_000), Row(2, "completed", 0.5, 9_000), Row(3, "pruned", null, 4_000), Row(4, "completed", 0.6, 1_000)],
        };

        var figure = CompareFigures.Pareto(new LeaderboardResult(new StageRef(5, "sweep-smoke", "leaderboard"), board));

        Assert.Equal(3, figure.Points);
        var front = Assert.IsType<Scatter>(figure.Data[1]);
        Assert.Equal([1_000.0, 5_000.0], front.X!.Cast<double>());
        Assert.Equal([0.6, 0.9], front.Y!.Cast<double>());
    }
}
