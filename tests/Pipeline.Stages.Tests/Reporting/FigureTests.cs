using System.Xml.Linq;
using Pipeline.Stages.Reporting;
using SkiaSharp;

namespace Pipeline.Stages.Tests.Reporting;

/// <summary>The shared figure conventions every stage draws with.</summary>
public sealed class FigureTests
{
    private static List<string> Texts(string svg) =>
        [.. XDocument.Parse(svg).Root!.Descendants().Where(e => e.Name.LocalName == "text").Select(e => e.Value.Trim())];

    private static LinePanel Sweep() =>
        new LinePanel("accuracy vs readout step", "readout step t", "top-1 accuracy (%)")
            .Line("rgc-shallow", Enumerable.Range(0, 16).Select(t => ((double)t, 25 + (60 * (1 - Math.Exp(-t / 4.0))), 2.0)))
            .Reference("basenet", 81.2)
            .Chance(4, scale: 100)
            .Marker("image off", 12)
            .IntegerX();

    [Fact]
    public void A_line_panel_labels_its_axes_references_chance_marker_and_band_in_a_legend()
    {
        var texts = Texts(new Figure("rgc-shallow on synthetic", Sweep()).Svg());

        Assert.Contains("rgc-shallow on synthetic", texts);
        Assert.Contains("readout step t", texts);
        Assert.Contains("top-1 accuracy (%)", texts);
        Assert.Contains("basenet (81.2)", texts);
        Assert.Contains("chance (1/4 = 25)", texts);
        Assert.Contains("image off", texts);
        Assert.Contains("shaded: ± 1 SEM", texts);
    }

    [Fact]
    public void The_legend_sits_right_of_the_data_not_over_it()
    {
        var figure = new Figure("legend", Sweep());
        using var bitmap = SKBitmap.Decode(figure.Png());
        var (width, height) = figure.Size;
        Assert.Equal((width, height), (bitmap.Width, bitmap.Height));

        // The data area's frame is a dark vertical line; the legend box (with its text) lies entirely to its right.
        var row = height / 2;
        var frame = Enumerable.Range(width / 3, width / 2).First(x => bitmap.GetPixel(x, row).Red < 60 && bitmap.GetPixel(x, row - 40).Red < 60 && bitmap.GetPixel(x, row + 40).Red < 60);
        var inkRight = Enumerable.Range(frame + 5, width - frame - 5).Count(x => Enumerable.Range(row - 60, 120).Any(y => bitmap.GetPixel(x, y).Red < 128));
        Assert.True(inkRight > 60, $"nothing right of the data area (frame at x = {frame}): the legend should be there");
    }

    [Fact]
    public void Limits_come_from_the_data_and_excluded_points_do_not_stretch_them()
    {
        var panel = new LinePanel("p", "x (s)", "y (m)")
            .Line("trusted", [(0.0, 0.4), (1, 0.5), (2, 0.6)])
            .Excluded("untrusted", [(3.0, -5), (4, 0.5)]);

        var texts = Texts(new Figure("limits", panel).Svg());

        Assert.Contains("untrusted (1 off scale)", texts);
        Assert.DoesNotContain("-5", texts);
        Assert.DoesNotContain("-4", texts);
    }

    [Fact]
    public void A_panel_without_data_says_so()
    {
        Assert.Contains("no data", Texts(new Figure("empty", new LinePanel("p", "x (s)", "y (m)")).Svg()));
    }

    [Fact]
    public void Tagged_points_and_a_staircase_on_a_log_x_axis_are_labelled_and_ticked_in_decades()
    {
        var panel = new LinePanel("top-1 vs size", "parameters (log scale)", "top-1 accuracy (%)")
            .LogX()
            .Points("trials", [(1e3, 40.0, "#1"), (1e4, 60, null), (1e5, 55, "#3"), (0, 99, "#4")])
            .StepLine("front", [(1e3, 40.0), (1e4, 60)]);

        var texts = Texts(new Figure("log x", panel).Svg());

        Assert.Contains("1e3", texts);
        Assert.Contains("1e4", texts);
        Assert.Contains("#1", texts);
        Assert.Contains("#3", texts);
        Assert.Contains("front", texts);
        // x = 0 has no place on a log axis: left out, tag and all, and it does not stretch the y axis to 99.
        Assert.DoesNotContain("#4", texts);
        Assert.DoesNotContain("95", texts);
    }

    [Fact]
    public void A_categorical_x_axis_labels_every_category_in_order_even_without_data()
    {
        var panel = new LinePanel("top-1 vs cell", "cell", "top-1 accuracy (%)")
            .CategoryX(["rgc", "lstm", "gru"])
            .Points("trials", [(0.0, 50.0), (1, 40)]);

        var texts = Texts(new Figure("categories", panel).Svg());

        Assert.Equal(["rgc", "lstm", "gru"], texts.Where(t => t is "rgc" or "lstm" or "gru").Distinct());
        Assert.Throws<InvalidOperationException>(() => new LinePanel("p", "x", "y").CategoryX(["a"]).LogX());
    }

    [Theory]
    [InlineData(1e-3, "1e-3")]
    [InlineData(0.0076, "7.6e-3")]
    [InlineData(0.25, "0.25")]
    [InlineData(81.2, "81.2")]
    [InlineData(2.5e5, "2.5e5")]
    public void Numbers_are_short_and_scientific_when_small(double value, string text) => Assert.Equal(text, LinePanel.Format(value));

    [Fact]
    public void A_heatmap_draws_a_colour_bar_with_its_label_and_every_value()
    {
        double?[,] values = { { 0.1, 0.5 }, { 0.9, null } };
        var panel = new HeatmapPanel("mean r", "area", "layer", "noise-corrected r", ["V4", "IT"], ["conv1", "conv2"], values).Outline(1, 0);

        var texts = Texts(new Figure("heat", panel).Svg());

        Assert.Contains("noise-corrected r", texts);
        Assert.Contains("0.90", texts);
        Assert.Contains("–", texts);
        Assert.Contains("conv2", texts);
        Assert.Throws<ArgumentException>(() => new HeatmapPanel("m", "a", "l", "r", ["V4"], ["conv1", "conv2"], values));
    }
}
