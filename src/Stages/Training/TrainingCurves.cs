using System.Text;
using Pipeline.Stages.Reporting;
using ScottPlot;
using ScottPlot.MultiplotLayouts;
using SkiaSharp;

namespace Pipeline.Stages.Training;

/// <summary>
/// Training curves as one figure: the given title above three panels side by side — loss (train and eval), accuracy
/// (train, eval top-1, eval top-5) and learning rate, each against the optimizer step. Renders without a display.
/// </summary>
/// <remarks>
/// Non-finite values (a diverged loss) are left out of a series instead of failing the render. Evaluations read out at
/// several unroll steps get one series per read-out step. Text needs a font on the machine (<see cref="PlotFonts"/>).
/// </remarks>
public static class TrainingCurves
{
    private const float TitleHeight = 34;
    private const float TitleFontSize = 20;

    public static byte[] RenderPng(TrainingHistory history, string title, int width = 1200, int height = 400)
    {
        Check(history, width, height);
        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul);
        using var surface = SKSurface.Create(info) ?? throw new InvalidOperationException($"SkiaSharp could not create a {width}×{height} surface.");
        Draw(surface.Canvas, history, title, width, height);
        using var image = surface.Snapshot();
        using var png = image.Encode(SKEncodedImageFormat.Png, 100);
        return png.ToArray();
    }

    public static string RenderSvg(TrainingHistory history, string title, int width = 1200, int height = 400)
    {
        Check(history, width, height);
        using var xml = new MemoryStream();
        // ScottPlot's own SVG image type is internal; SkiaSharp's SVG canvas is what it wraps. The canvas writes the
        // document when it is disposed, so it must be gone before the stream is read.
        using (var canvas = SKSvgCanvas.Create(SKRect.Create(width, height), xml))
            Draw(canvas, history, title, width, height);
        return Encoding.UTF8.GetString(xml.ToArray());
    }

    private static void Check(TrainingHistory history, int width, int height)
    {
        PlotFonts.Ensure();
        ArgumentNullException.ThrowIfNull(history);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 100);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 100);
    }

    private static void Draw(SKCanvas canvas, TrainingHistory history, string title, int width, int height)
    {
        canvas.Clear(SKColors.White);

        var figure = new Multiplot { Layout = new Columns() };
        figure.AddPlots(3);
        var (loss, accuracy, rate) = (figure.GetPlot(0), figure.GetPlot(1), figure.GetPlot(2));

        var train = history.Train ?? [];
        var eval = history.Eval ?? [];
        AddSeries(loss, "train", train.Select(p => (p.Step, p.Loss)));
        foreach (var group in ByReadout(eval))
            AddSeries(loss, Name("eval", group.Key), group.Select(p => (p.Step, p.Loss)));
        Decorate(loss, "loss", "loss", Alignment.UpperRight);

        AddSeries(accuracy, "train", train.Select(p => (p.Step, p.Accuracy)));
        foreach (var group in ByReadout(eval))
        {
            AddSeries(accuracy, Name("eval top-1", group.Key), group.Select(p => (p.Step, p.Top1)));
            AddSeries(accuracy, Name("eval top-5", group.Key), group.Select(p => (p.Step, p.Top5)));
        }
        Decorate(accuracy, "accuracy", "accuracy", Alignment.LowerRight);

        AddSeries(rate, "learning rate", train.Select(p => (p.Step, p.LearningRate)));
        Decorate(rate, "learning rate", "learning rate", Alignment.UpperRight);

        // Multiplot lays its panels out from the canvas origin whatever the rectangle's offset, so the canvas is shifted
        // down to leave a strip for the figure title, which Multiplot has no notion of.
        // The clip keeps the panels' own background clear (transparent) from wiping the title strip.
        canvas.Save();
        canvas.Translate(0, TitleHeight);
        canvas.ClipRect(SKRect.Create(width, height - TitleHeight));
        figure.Render(canvas, new PixelRect(left: 0, right: width, bottom: height - TitleHeight, top: 0));
        canvas.Restore();

        using var font = new SKFont(Fonts.GetTypeface(Fonts.Default, bold: true, italic: false), TitleFontSize);
        using var paint = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        canvas.DrawText(title ?? "", width / 2f, TitleHeight - 9, SKTextAlign.Center, font, paint);
    }

    private static IEnumerable<IGrouping<int?, EvalPoint>> ByReadout(IEnumerable<EvalPoint> eval) =>
        eval.GroupBy(p => p.ReadoutStep).OrderBy(g => g.Key ?? int.MinValue);

    private static string Name(string series, int? readoutStep) => readoutStep is { } t ? $"{series} (t={t})" : series;

    private static void AddSeries(Plot plot, string label, IEnumerable<(long Step, double Value)> points)
    {
        var finite = points.Where(p => double.IsFinite(p.Value)).OrderBy(p => p.Step).ToArray();
        if (finite.Length == 0) return;
        var scatter = plot.Add.Scatter(finite.Select(p => (double)p.Step).ToArray(), finite.Select(p => p.Value).ToArray());
        scatter.LegendText = label;
        // Markers only where there are few points: a single evaluation must still be visible, a long run stays a line.
        scatter.MarkerSize = finite.Length <= 30 ? 5 : 0;
        scatter.LineWidth = 1.5f;
    }

    /// <param name="legend">Where the curves usually are not: loss and rate fall, accuracy rises.</param>
    private static void Decorate(Plot plot, string title, string yLabel, Alignment legend)
    {
        plot.Title(title, 14);
        plot.XLabel("step", 12);
        plot.YLabel(yLabel, 12);
        if (plot.GetPlottables().Any())
        {
            plot.ShowLegend(legend);
        }
        else
        {
            // Axes from 0 to 1 rather than ScottPlot's default ±10 when there is nothing to show yet.
            plot.Axes.SetLimits(0, 1, 0, 1);
        }
    }
}
