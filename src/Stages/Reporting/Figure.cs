using System.Text;
using ScottPlot;
using ScottPlot.MultiplotLayouts;
using SkiaSharp;

namespace Pipeline.Stages.Reporting;

/// <summary>One panel of a <see cref="Figure"/>: draws itself (data, axes, legend) onto a ScottPlot plot.</summary>
public interface IFigurePanel
{
    /// <summary>The panel's size in pixels, its legend and colour bar included.</summary>
    (int Width, int Height) Size { get; }

    void Draw(Plot plot);
}

/// <summary>
/// A titled row of panels rendered as PNG or SVG, without a display, at one size and style for every stage: the title
/// strip above, the panels side by side (each <see cref="IFigurePanel.Size"/>; the row takes the largest), white
/// background, text in <see cref="PlotFonts"/>. The figure conventions themselves live in the panels:
/// <see cref="LinePanel"/> (labelled axes with units, legend outside the data, chance and baseline lines, an image-off
/// marker, SEM bands, limits from the data) and <see cref="HeatmapPanel"/> (a colour bar with its label).
/// </summary>
/// <example>
/// A time-step sweep figure, one panel:
/// <code>
/// var panel = new LinePanel("accuracy vs readout step", "readout step t", "top-1 accuracy (%)")
///     .Line("rgc-shallow", steps.Select((t, i) => ((double)t, 100 * top1[i])))
///     .Reference("basenet", 100 * baselineTop1)
///     .Chance(classes, scale: 100)
///     .Marker("image off", imageOffStep)
///     .IntegerX();
/// var figure = new Figure("rgc-shallow on synthetic", panel);
/// await context.WriteOutputAsync("sweep_readout.png", new MemoryStream(figure.Png()), ct);
/// await context.WriteOutputAsync("sweep_readout.svg", new MemoryStream(Encoding.UTF8.GetBytes(figure.Svg())), ct);
/// </code>
/// Several panels side by side: <c>new Figure(title, loss, accuracy, learningRate)</c>.
/// </example>
public sealed class Figure
{
    private readonly IReadOnlyList<IFigurePanel> _panels;

    public Figure(string title, params IReadOnlyList<IFigurePanel> panels)
    {
        ArgumentNullException.ThrowIfNull(panels);
        Title = title ?? "";
        _panels = panels;
    }

    public string Title { get; }

    /// <summary>The size <see cref="Png"/> and <see cref="Svg"/> render at when not told otherwise.</summary>
    public (int Width, int Height) Size
    {
        get
        {
            var (width, height) = _panels.Count == 0 ? (FigureStyle.PanelWidth, FigureStyle.PanelHeight) : (_panels.Max(p => p.Size.Width), _panels.Max(p => p.Size.Height));
            return (width * Math.Max(1, _panels.Count), height + (int)FigureStyle.TitleHeight);
        }
    }

    public byte[] Png(int? width = null, int? height = null)
    {
        var (w, h) = Resolve(width, height);
        var info = new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Premul);
        using var surface = SKSurface.Create(info) ?? throw new InvalidOperationException($"SkiaSharp could not create a {w}×{h} surface.");
        Draw(surface.Canvas, w, h);
        using var image = surface.Snapshot();
        using var png = image.Encode(SKEncodedImageFormat.Png, 100);
        return png.ToArray();
    }

    public string Svg(int? width = null, int? height = null)
    {
        var (w, h) = Resolve(width, height);
        using var xml = new MemoryStream();
        // ScottPlot's own SVG image type is internal; SkiaSharp's SVG canvas is what it wraps. The canvas writes the
        // document when it is disposed, so it must be gone before the stream is read.
        using (var canvas = SKSvgCanvas.Create(SKRect.Create(w, h), xml))
            Draw(canvas, w, h);
        return Encoding.UTF8.GetString(xml.ToArray());
    }

    private (int Width, int Height) Resolve(int? width, int? height)
    {
        PlotFonts.Ensure();
        var (w, h) = (width ?? Size.Width, height ?? Size.Height);
        ArgumentOutOfRangeException.ThrowIfLessThan(w, 100, nameof(width));
        ArgumentOutOfRangeException.ThrowIfLessThan(h, 100, nameof(height));
        return (w, h);
    }

    private void Draw(SKCanvas canvas, int width, int height)
    {
        canvas.Clear(SKColors.White);
        var figure = new Multiplot { Layout = new Columns() };
        figure.AddPlots(Math.Max(1, _panels.Count));
        for (var i = 0; i < _panels.Count; i++)
        {
            var plot = figure.GetPlot(i);
            plot.Legend.FontSize = FigureStyle.LegendFontSize;
            plot.Axes.Bottom.TickLabelStyle.FontSize = FigureStyle.TickFontSize;
            plot.Axes.Left.TickLabelStyle.FontSize = FigureStyle.TickFontSize;
            _panels[i].Draw(plot);
        }

        // Multiplot lays its panels out from the canvas origin whatever the rectangle's offset, so the canvas is shifted
        // down to leave a strip for the figure title, which Multiplot has no notion of. The clip keeps the panels' own
        // background from wiping the title strip.
        var top = FigureStyle.TitleHeight;
        canvas.Save();
        canvas.Translate(0, top);
        canvas.ClipRect(SKRect.Create(width, height - top));
        figure.Render(canvas, new PixelRect(left: 0, right: width, bottom: height - top, top: 0));
        canvas.Restore();

        using var font = new SKFont(Fonts.GetTypeface(Fonts.Default, bold: true, italic: false), FigureStyle.TitleFontSize);
        using var paint = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        canvas.DrawText(Title, width / 2f, top - 9, SKTextAlign.Center, font, paint);
    }
}

/// <summary>The one size, type and colour scheme of every figure the stages write.</summary>
public static class FigureStyle
{
    /// <summary>A line panel's size, its legend (to the right of the data) included.</summary>
    public const int PanelWidth = 600;

    public const int PanelHeight = 420;
    public const float TitleHeight = 34;
    public const float TitleFontSize = 18;
    public const float PanelTitleFontSize = 14;
    public const float AxisLabelFontSize = 12;
    public const float TickFontSize = 11;
    public const float LegendFontSize = 11;
    public const float LineWidth = 1.5f;

    /// <summary>Lines with more points than this are drawn without markers (a single point must still be visible).</summary>
    public const int MarkersUpTo = 30;

    /// <summary>Opacity (0–255) of the SEM band drawn in its line's colour.</summary>
    public const byte BandAlpha = 60;

    private static readonly ScottPlot.Palettes.Category10 Palette = new();

    /// <summary>The i-th colour of the series palette (Category10, as matplotlib).</summary>
    public static Color SeriesColor(int index) => Palette.GetColor(index);

    /// <summary>The chance line.</summary>
    public static readonly Color Chance = Colors.Black;

    /// <summary>Vertical markers such as the image-off step.</summary>
    public static readonly Color Marker = Colors.DimGray;

    /// <summary>Values drawn for completeness but not trusted (e.g. bins below a noise-ceiling threshold).</summary>
    public static readonly Color Excluded = Colors.DarkGray;
}
