using System.Globalization;
using System.Text;
using Pipeline.Stages.Reporting;
using ScottPlot;
using ScottPlot.MultiplotLayouts;
using SkiaSharp;

namespace Pipeline.Stages.NeuralFit;

/// <summary>
/// The neural-fit figures, rendered without a display as PNG or SVG: predictivity over time (one panel per area, one
/// line per layer) and a layer × area heatmap of the time-averaged predictivity. Non-finite values are left out.
/// </summary>
public static class PredictivityPlots
{
    private const float TitleHeight = 34;

    /// <summary>Noise-corrected predictivity against the bin's start, per area, one series per layer (one method).</summary>
    public static byte[] OverTimePng(IReadOnlyList<PredictivityRow> rows, string method, string title) =>
        Png(OverTimeSize(rows), (canvas, w, h) => DrawOverTime(canvas, w, h, rows, method, title));

    public static string OverTimeSvg(IReadOnlyList<PredictivityRow> rows, string method, string title) =>
        Svg(OverTimeSize(rows), (canvas, w, h) => DrawOverTime(canvas, w, h, rows, method, title));

    /// <summary>Layers (rows, model order) × areas (columns): each cell the layer's mean noise-corrected predictivity.</summary>
    public static byte[] HeatmapPng(IReadOnlyList<AreaBestLayer> best, string title) =>
        Png(HeatmapSize(best), (canvas, w, h) => DrawHeatmap(canvas, w, h, best, title));

    public static string HeatmapSvg(IReadOnlyList<AreaBestLayer> best, string title) =>
        Svg(HeatmapSize(best), (canvas, w, h) => DrawHeatmap(canvas, w, h, best, title));

    private static (int Width, int Height) OverTimeSize(IReadOnlyList<PredictivityRow> rows) =>
        (Math.Max(500, 480 * rows.Select(r => r.Area).Distinct().Count()), 420);

    private static (int Width, int Height) HeatmapSize(IReadOnlyList<AreaBestLayer> best) =>
        (Math.Max(420, 160 + (130 * best.Count)), Math.Max(320, 120 + (42 * (best.Count > 0 ? best[0].ByLayer.Count : 1))));

    private static void DrawOverTime(SKCanvas canvas, int width, int height, IReadOnlyList<PredictivityRow> rows, string method, string title)
    {
        var mine = rows.Where(r => r.Method == method).ToList();
        var areas = mine.Select(r => r.Area).Distinct().ToList();
        var figure = new Multiplot { Layout = new Columns() };
        figure.AddPlots(Math.Max(1, areas.Count));
        for (var a = 0; a < areas.Count; a++)
        {
            var plot = figure.GetPlot(a);
            var area = mine.Where(r => r.Area == areas[a]).ToList();
            foreach (var layer in area.Select(r => r.Layer).Distinct())
            {
                var points = area.Where(r => r.Layer == layer && double.IsFinite(r.NoiseCorrected)).OrderBy(r => r.BinStartMs).ToArray();
                if (points.Length == 0) continue;
                var scatter = plot.Add.Scatter(points.Select(p => (double)p.BinStartMs).ToArray(), points.Select(p => p.NoiseCorrected).ToArray());
                scatter.LegendText = layer;
                scatter.MarkerSize = 4;
                scatter.LineWidth = 1.5f;
            }
            plot.Title($"{areas[a]} ({method})", 14);
            plot.XLabel("bin start (ms)", 12);
            plot.YLabel("noise-corrected r", 12);
            if (plot.GetPlottables().Any()) plot.ShowLegend(Alignment.LowerRight);
            else plot.Axes.SetLimits(0, 1, 0, 1);
        }
        DrawFigure(canvas, width, height, figure, title);
    }

    private static void DrawHeatmap(SKCanvas canvas, int width, int height, IReadOnlyList<AreaBestLayer> best, string title)
    {
        var figure = new Multiplot();
        figure.AddPlots(1);
        var plot = figure.GetPlot(0);
        var layers = best.Count > 0 ? best[0].ByLayer.Keys.ToList() : [];
        var values = best.SelectMany(b => b.ByLayer.Values).OfType<double>().ToList();
        var (low, high) = values.Count == 0 ? (0.0, 1.0) : (values.Min(), values.Max());
        var colormap = new ScottPlot.Colormaps.Viridis();
        for (var a = 0; a < best.Count; a++)
        {
            for (var l = 0; l < layers.Count; l++)
            {
                // Row 0 (the first layer) at the top.
                var (x, y) = (a, layers.Count - 1 - l);
                var value = best[a].ByLayer[layers[l]];
                var rect = plot.Add.Rectangle(x, x + 1, y, y + 1);
                rect.FillStyle.Color = value is { } v ? colormap.GetColor(high > low ? (v - low) / (high - low) : 0.5) : Colors.LightGray;
                rect.LineStyle.Width = layers[l] == best[a].Layer ? 3 : 0.5f;
                rect.LineStyle.Color = layers[l] == best[a].Layer ? Colors.Red : Colors.White;
                var label = plot.Add.Text(value is { } w ? w.ToString("F2", CultureInfo.InvariantCulture) : "–", x + 0.5, y + 0.5);
                label.LabelFontSize = 13;
                label.LabelAlignment = Alignment.MiddleCenter;
                label.LabelFontColor = value is { } c && high > low && (c - low) / (high - low) > 0.6 ? Colors.Black : Colors.White;
            }
        }
        plot.Axes.Bottom.SetTicks([.. Enumerable.Range(0, best.Count).Select(a => a + 0.5)], [.. best.Select(b => b.Area)]);
        plot.Axes.Left.SetTicks([.. Enumerable.Range(0, layers.Count).Select(l => layers.Count - 1 - l + 0.5)], [.. layers]);
        plot.Axes.SetLimits(0, Math.Max(1, best.Count), 0, Math.Max(1, layers.Count));
        plot.XLabel("area", 12);
        plot.YLabel("layer", 12);
        plot.Title($"mean noise-corrected r over bins ({(best.Count > 0 ? best[0].Method : "-")}); red: best layer", 12);
        DrawFigure(canvas, width, height, figure, title);
    }

    private static void DrawFigure(SKCanvas canvas, int width, int height, Multiplot figure, string title)
    {
        canvas.Clear(SKColors.White);
        // Multiplot lays its panels out from the canvas origin, so the canvas is shifted down for the title strip.
        canvas.Save();
        canvas.Translate(0, TitleHeight);
        canvas.ClipRect(SKRect.Create(width, height - TitleHeight));
        figure.Render(canvas, new PixelRect(left: 0, right: width, bottom: height - TitleHeight, top: 0));
        canvas.Restore();
        using var font = new SKFont(Fonts.GetTypeface(Fonts.Default, bold: true, italic: false), 18);
        using var paint = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        canvas.DrawText(title, width / 2f, TitleHeight - 9, SKTextAlign.Center, font, paint);
    }

    private static byte[] Png((int Width, int Height) size, Action<SKCanvas, int, int> draw)
    {
        PlotFonts.Ensure();
        var info = new SKImageInfo(size.Width, size.Height, SKColorType.Rgba8888, SKAlphaType.Premul);
        using var surface = SKSurface.Create(info) ?? throw new InvalidOperationException($"SkiaSharp could not create a {size.Width}×{size.Height} surface.");
        draw(surface.Canvas, size.Width, size.Height);
        using var image = surface.Snapshot();
        using var png = image.Encode(SKEncodedImageFormat.Png, 100);
        return png.ToArray();
    }

    private static string Svg((int Width, int Height) size, Action<SKCanvas, int, int> draw)
    {
        PlotFonts.Ensure();
        using var xml = new MemoryStream();
        // The SVG canvas writes the document when disposed, so it must be gone before the stream is read.
        using (var canvas = SKSvgCanvas.Create(SKRect.Create(size.Width, size.Height), xml))
            draw(canvas, size.Width, size.Height);
        return Encoding.UTF8.GetString(xml.ToArray());
    }
}
