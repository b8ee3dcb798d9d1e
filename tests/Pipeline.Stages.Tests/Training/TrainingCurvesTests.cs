using System.Text.Json;
using System.Xml.Linq;
using Pipeline.Stages.Reporting;
using Pipeline.Stages.Training;
using SkiaSharp;

namespace Pipeline.Stages.Tests.Training;

public sealed class TrainingCurvesTests
{
    private static readonly byte[] PngSignature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    private static TrainingHistory Run(int steps = 300, int evalEvery = 50, int[]? readouts = null, double? constantRate = null)
    {
        var history = TrainingHistory.Empty();
        for (var s = 10; s <= steps; s += 10)
        {
            history.Train.Add(new TrainPoint(s, s / 100, 2.3 * Math.Exp(-s / 150.0) + 0.2, 1 - Math.Exp(-s / 120.0) * 0.9,
                constantRate ?? 0.1 * Math.Cos(Math.PI * s / (2.0 * steps)), 850, 0.05));
        }
        for (var s = evalEvery; s <= steps; s += evalEvery)
        {
            foreach (int? t in readouts?.Select(r => (int?)r) ?? [null])
                history.Eval.Add(new EvalPoint(s, s / 100, 2.4 * Math.Exp(-s / 160.0) + 0.3, 0.8 - 0.6 * Math.Exp(-s / 100.0) - 0.01 * (t ?? 0), 0.97, t));
        }
        return history;
    }

    /// <summary>Decodes with SkiaSharp 4.155 (the version the project pins) and measures how much of a region is not white.</summary>
    private static double InkFraction(byte[] png, SKRectI region)
    {
        using var bitmap = SKBitmap.Decode(png);
        Assert.NotNull(bitmap);
        var ink = 0;
        for (var y = region.Top; y < region.Bottom; y++)
        {
            for (var x = region.Left; x < region.Right; x++)
            {
                var c = bitmap.GetPixel(x, y);
                if (c.Red < 200 || c.Green < 200 || c.Blue < 200) ink++;
            }
        }
        return ink / (double)(region.Width * region.Height);
    }

    private static List<string> Texts(string svg) =>
        [.. XDocument.Parse(svg).Root!.Descendants().Where(e => e.Name.LocalName == "text").Select(e => e.Value.Trim())];

    [Fact]
    public void Png_has_the_png_signature_the_figure_size_and_drawn_curves_and_title()
    {
        var figure = TrainingCurves.Build(Run(), "rgc-shallow on fashion-mnist", classes: 10);
        var png = figure.Png();

        Assert.Equal(PngSignature, png[..8]);
        Assert.True(png.Length > 20_000, $"{png.Length} bytes is too small for three panels of curves");
        var (width, height) = figure.Size;
        Assert.Equal((3 * FigureStyle.PanelWidth, FigureStyle.PanelHeight + (int)FigureStyle.TitleHeight), (width, height));
        using (var bitmap = SKBitmap.Decode(png))
        {
            Assert.Equal(width, bitmap.Width);
            Assert.Equal(height, bitmap.Height);
            // Opaque white behind the title too, not a transparent strip that only looks white in some viewers.
            Assert.Equal(SKColors.White, bitmap.GetPixel(0, 0));
            Assert.Equal(SKColors.White, bitmap.GetPixel(width - 1, height - 1));
        }
        // Letters in the title strip and in the first panel's tick-label margin: SkiaSharp's Linux build finds no system
        // fonts by itself, and without the registered DejaVu files every text came out blank (fonts-dejavu-core).
        Assert.True(InkFraction(png, new SKRectI((width / 2) - 200, 2, (width / 2) + 200, 30)) > 0.02, "the figure title is blank; is fonts-dejavu-core installed?");
        Assert.True(InkFraction(png, new SKRectI(12, 80, 42, 340)) > 0.02, "the tick labels are blank; is fonts-dejavu-core installed?");
        var panel = width / 3;
        for (var i = 0; i < 3; i++)
            Assert.True(InkFraction(png, new SKRectI((i * panel) + 70, 80, (i * panel) + 380, 340)) > 0.01, $"panel {i} is blank");
    }

    [Fact]
    public void Svg_is_xml_with_an_svg_root_of_the_requested_size()
    {
        var svg = TrainingCurves.Build(Run(readouts: [3, 5]), "rgc-shallow on fashion-mnist", classes: 10).Svg(900, 300);

        var root = XDocument.Parse(svg).Root!;
        Assert.Equal("svg", root.Name.LocalName);
        Assert.Equal("900", root.Attribute("width")?.Value);
        Assert.Equal("300", root.Attribute("height")?.Value);
        Assert.True(root.Descendants().Count(e => e.Name.LocalName == "path") > 10);
        var texts = Texts(svg);
        Assert.Contains("rgc-shallow on fashion-mnist", texts);
        Assert.Contains("eval top-1 (t=5)", texts);
    }

    [Fact]
    public void A_constant_learning_rate_is_drawn_on_a_log_axis_with_its_value_as_a_tick()
    {
        // 1e-3 used to come out as a flat line at 0 on a −1…1 axis.
        var texts = Texts(TrainingCurves.RenderSvg(Run(constantRate: 1e-3), "constant", classes: 10));

        Assert.Contains("learning rate (log scale)", texts);
        Assert.Contains("learning rate (constant 1e-3)", texts);
        Assert.Contains("1e-3", texts);
        Assert.Contains("2e-3", texts);
        Assert.Contains("5e-4", texts);
        Assert.DoesNotContain("-1", texts);
        // An awkward value keeps its own tick (and the 1/2/5 ticks too close to it give way).
        var odd = Texts(TrainingCurves.RenderSvg(Run(constantRate: 0.0076), "constant", classes: 10));
        Assert.Contains("7.6e-3", odd);
        Assert.Contains("learning rate (constant 7.6e-3)", odd);
    }

    [Fact]
    public void Axes_say_their_units_and_the_accuracy_panel_has_a_chance_line_at_one_over_the_classes()
    {
        var texts = Texts(TrainingCurves.RenderSvg(Run(), "units", classes: 10));

        Assert.Contains("optimizer step", texts);
        Assert.Contains("cross-entropy loss (nats)", texts);
        Assert.Contains("accuracy (%)", texts);
        Assert.Contains("chance (1/10 = 10)", texts);
        // Accuracy in %, its axis from the data (the train accuracy reaches ≈ 92 %), not pinned at 1.
        Assert.Contains("90", texts);
    }

    [Fact]
    public void Top5_is_drawn_only_with_more_than_five_classes()
    {
        var four = Texts(TrainingCurves.RenderSvg(Run(), "four classes", classes: 4));
        var ten = Texts(TrainingCurves.RenderSvg(Run(), "ten classes", classes: 10));

        Assert.DoesNotContain(four, t => t.Contains("top-5", StringComparison.Ordinal));
        Assert.Contains("chance (1/4 = 25)", four);
        Assert.Contains("eval top-5", ten);
    }

    [Fact]
    public void An_empty_history_renders()
    {
        var png = TrainingCurves.RenderPng(TrainingHistory.Empty(), "nothing yet", classes: 4);
        Assert.Equal(PngSignature, png[..8]);
        var svg = TrainingCurves.RenderSvg(TrainingHistory.Empty(), "nothing yet", classes: 4);
        Assert.Equal("svg", XDocument.Parse(svg).Root!.Name.LocalName);
        Assert.Contains("no data", Texts(svg));
    }

    [Fact]
    public void A_single_train_and_eval_point_renders()
    {
        var history = new TrainingHistory(
            [new TrainPoint(1, 0, 2.3, 0.1, 0.1, 100, 0.2)],
            [new EvalPoint(1, 0, 2.31, 0.1, 0.5, null)]);
        var png = TrainingCurves.RenderPng(history, "one step", classes: 10);
        Assert.Equal(PngSignature, png[..8]);
        XDocument.Parse(TrainingCurves.RenderSvg(history, "one step", classes: 10));
    }

    [Fact]
    public void Nan_and_infinite_values_do_not_crash_and_survive_the_checkpoint_json()
    {
        var history = Run(steps: 100, evalEvery: 20);
        history.Train.Add(new TrainPoint(110, 1, double.NaN, double.NaN, 0.1, double.PositiveInfinity, double.NaN));
        history.Train.Add(new TrainPoint(120, 1, double.PositiveInfinity, 0.5, double.NaN, 0, 0));
        history.Eval.Add(new EvalPoint(120, 1, double.NaN, double.NaN, double.NegativeInfinity, 2));
        var allNan = new TrainingHistory([new TrainPoint(1, 0, double.NaN, double.NaN, double.NaN, double.NaN, double.NaN)], []);

        Assert.Equal(PngSignature, TrainingCurves.RenderPng(history, "diverged", classes: 10)[..8]);
        Assert.Equal(PngSignature, TrainingCurves.RenderPng(allNan, "diverged", classes: 10)[..8]);
        XDocument.Parse(TrainingCurves.RenderSvg(history, "diverged", classes: 10));

        // The history lives in checkpoint.json (PipelineJson): a NaN loss must not make the checkpoint unwritable.
        var json = JsonSerializer.Serialize(history, PipelineJson.Options);
        var back = JsonSerializer.Deserialize<TrainingHistory>(json, PipelineJson.Options)!;
        Assert.Contains("\"input_wait_fraction\"", json);
        Assert.Equal(history.Train, back.Train);
        Assert.Equal(history.Eval, back.Eval);
    }
}
