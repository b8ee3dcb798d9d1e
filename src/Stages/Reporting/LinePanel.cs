using System.Globalization;
using ScottPlot;
using ScottPlot.TickGenerators;

namespace Pipeline.Stages.Reporting;

/// <summary>
/// One panel of lines against a shared x axis, with the conventions every stage's figures follow: axis labels that say
/// the unit ("readout step t", "loss (nats)", "accuracy (%)"), the legend to the right of the data (never over it),
/// labelled horizontal reference lines (<see cref="Reference"/>: baselines; <see cref="Chance"/>), labelled vertical
/// markers (<see cref="Marker"/>: the image-off step), ± SEM bands around a line, points drawn greyed when they are not
/// trusted (<see cref="Excluded"/>), and axis limits from what is drawn (lines, bands, references, markers, padded by 5 %),
/// never a fixed range. A missing (non-finite) value breaks its line rather than being bridged; a panel with nothing to
/// draw says so. Besides lines: points without a line (<c>Points</c>, a scatter, optionally tagged), staircases
/// (<see cref="StepLine"/>: a Pareto front), a logarithmic x axis (<see cref="LogX"/>) and a categorical one
/// (<see cref="CategoryX"/>).
/// </summary>
/// <remarks>
/// A builder: each call adds to the panel and returns it; <see cref="Figure"/> renders it. Colours follow the order of
/// <see cref="Line"/> calls, then of <see cref="Reference"/> calls (Category10), so a baseline never takes a line's colour.
/// See <see cref="Figure"/> for a whole example.
/// </remarks>
public sealed class LinePanel : IFigurePanel
{
    private const double Padding = 0.05;

    private readonly List<LineSeries> _lines = [];
    private readonly List<(string Label, double Y, Color? Color)> _references = [];
    private readonly List<(string Label, double X)> _markers = [];
    private readonly List<double> _includeY = [];
    private IReadOnlyList<string>? _categories;
    private string? _chanceLabel;
    private double _chance = double.NaN;
    private bool _integerX;

    /// <param name="title">Above the panel (what is plotted, e.g. "accuracy vs readout step").</param>
    /// <param name="xLabel">The x axis with its unit, e.g. "optimizer step", "bin start (ms)".</param>
    /// <param name="yLabel">The y axis with its unit, e.g. "top-1 accuracy (%)", "noise-corrected r".</param>
    public LinePanel(string title, string xLabel, string yLabel)
    {
        Title = title;
        XLabel = xLabel;
        YLabel = yLabel;
    }

    public string Title { get; }
    public string XLabel { get; }
    public string YLabel { get; }

    /// <summary>The legend's note for the shaded bands (shown once when any line has a band).</summary>
    public string BandLabel { get; set; } = "shaded: ± 1 SEM";

    public (int Width, int Height) Size { get; set; } = (FigureStyle.PanelWidth, FigureStyle.PanelHeight);

    public bool IsLogY { get; private set; }

    public bool IsLogX { get; private set; }

    /// <summary>True when the panel draws at least one finite value (a line point or a reference).</summary>
    public bool HasData => _lines.Any(l => l.Points.Any(p => double.IsFinite(p.Y))) || _references.Count > 0 || double.IsFinite(_chance);

    /// <summary>A line through the points (sorted by x).</summary>
    /// <param name="dashed">E.g. a ceiling or a bound rather than a measurement.</param>
    public LinePanel Line(string label, IEnumerable<(double X, double Y)> points, Color? color = null, bool dashed = false) =>
        Add(new LineSeries(label, Clean(points.Select(p => (p.X, p.Y, double.NaN))), color, dashed, SeriesStyle.Line));

    /// <summary>A line with a ± SEM band around it (a non-finite SEM draws the point without a band there).</summary>
    public LinePanel Line(string label, IEnumerable<(double X, double Y, double Sem)> points, Color? color = null) =>
        Add(new LineSeries(label, Clean(points), color, Dashed: false, SeriesStyle.Line));

    /// <summary>
    /// A staircase through the points (sorted by x), each point marked: level from a point to the next one's x, then up or
    /// down to it. What is attainable up to each x, e.g. a Pareto front (the best value with at most so many parameters).
    /// </summary>
    public LinePanel StepLine(string label, IEnumerable<(double X, double Y)> points, Color? color = null) =>
        Add(new LineSeries(label, Clean(points.Select(p => (p.X, p.Y, double.NaN))), color, Dashed: false, SeriesStyle.Steps));

    /// <summary>Points without a line (a scatter), one legend entry: e.g. one per trial of a search.</summary>
    public LinePanel Points(string label, IEnumerable<(double X, double Y)> points, Color? color = null) =>
        Points(label, points.Select(p => (p.X, p.Y, (string?)null)), color);

    /// <summary>Points without a line, each with an optional short tag written beside it (e.g. "#3", a trial number).</summary>
    public LinePanel Points(string label, IEnumerable<(double X, double Y, string? Tag)> points, Color? color = null)
    {
        var sorted = points.Where(p => double.IsFinite(p.X)).OrderBy(p => p.X).ToList();
        return Add(new LineSeries(label, Clean(sorted.Select(p => (p.X, p.Y, double.NaN))), color, Dashed: false, SeriesStyle.Points, [.. sorted.Select(p => p.Tag)]));
    }

    /// <summary>
    /// Points drawn greyed and hollow, without a line: values kept for completeness but not trusted (e.g. bins below a
    /// noise-ceiling threshold). One legend entry, however many calls. They never widen the axis limits (an untrusted
    /// −5 must not squash the trusted values); the legend counts those that fall off scale.
    /// </summary>
    public LinePanel Excluded(string label, IEnumerable<(double X, double Y)> points) =>
        Add(new LineSeries(label, Clean(points.Select(p => (p.X, p.Y, double.NaN))), FigureStyle.Excluded, Dashed: false, SeriesStyle.Excluded));

    /// <summary>A horizontal dashed line across the panel, labelled in the legend: a baseline, a threshold.</summary>
    public LinePanel Reference(string label, double y, Color? color = null)
    {
        if (double.IsFinite(y)) _references.Add((label, y, color));
        return this;
    }

    /// <summary>The chance line at <paramref name="scale"/> / <paramref name="classes"/> (scale 100 on a % axis).</summary>
    public LinePanel Chance(int classes, double scale = 1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(classes, 2);
        _chance = scale / classes;
        _chanceLabel = $"chance (1/{classes} = {Format(_chance)})";
        return this;
    }

    /// <summary>A vertical dotted line labelled at the top of the data area, e.g. "image off" at the step the image goes off.</summary>
    public LinePanel Marker(string label, double x)
    {
        if (double.IsFinite(x)) _markers.Add((label, x));
        return this;
    }

    /// <summary>Values the y axis must show even without data there (e.g. 0 for a loss, 100 for an accuracy in %).</summary>
    public LinePanel IncludeY(params IEnumerable<double> ys)
    {
        _includeY.AddRange(ys.Where(double.IsFinite));
        return this;
    }

    /// <summary>
    /// A logarithmic y axis with ticks at 1, 2 and 5 × 10^k in scientific notation (e.g. a learning rate); values ≤ 0
    /// are left out. A constant value stays visible, centred in a one-decade range with its own tick.
    /// </summary>
    public LinePanel LogY()
    {
        IsLogY = true;
        return this;
    }

    /// <summary>
    /// A logarithmic x axis, ticked as <see cref="LogY"/> (e.g. a parameter count, a learning rate); points at x ≤ 0 are
    /// left out, and so are markers there.
    /// </summary>
    public LinePanel LogX()
    {
        if (_categories is not null) throw new InvalidOperationException("A categorical x axis cannot also be logarithmic.");
        IsLogX = true;
        return this;
    }

    /// <summary>
    /// A categorical x axis: x = i stands for <paramref name="categories"/>[i], every category gets its labelled tick
    /// (in the order given, with or without data) and the axis spans exactly them. Overrides <see cref="IntegerX"/>.
    /// </summary>
    public LinePanel CategoryX(IReadOnlyList<string> categories)
    {
        ArgumentNullException.ThrowIfNull(categories);
        if (IsLogX) throw new InvalidOperationException("A categorical x axis cannot also be logarithmic.");
        _categories = [.. categories];
        return this;
    }

    /// <summary>Integer ticks only on the x axis (steps, layers).</summary>
    public LinePanel IntegerX()
    {
        _integerX = true;
        return this;
    }

    private LinePanel Add(LineSeries series)
    {
        _lines.Add(series);
        return this;
    }

    public void Draw(Plot plot)
    {
        plot.Title(Title, FigureStyle.PanelTitleFontSize);
        plot.XLabel(XLabel, FigureStyle.AxisLabelFontSize);
        plot.YLabel(YLabel, FigureStyle.AxisLabelFontSize);

        var colour = 0;
        var ys = new List<double>();
        var xs = new List<double>();
        var excluded = new List<(double X, double Y)>();
        var tags = new List<(double X, double Y, string Tag, Color Color)>();
        string? excludedLabel = null;
        var anyBand = false;
        foreach (var line in _lines)
        {
            var color = line.Color ?? FigureStyle.SeriesColor(colour++);
            // A value a log axis cannot show becomes a gap: the point (and its x) is left out.
            var points = line.Points.Select(p => (X: X(p.X), Y: IsLogY && p.Y <= 0 || IsLogX && p.X <= 0 ? double.NaN : p.Y, p.Sem)).ToList();
            if (line.Style == SeriesStyle.Points)
            {
                var shown = points.Select((p, i) => (p.X, p.Y, Tag: line.Tags?[i])).Where(p => double.IsFinite(p.Y)).ToList();
                xs.AddRange(shown.Select(p => p.X));
                ys.AddRange(shown.Select(p => Y(p.Y)));
                var dots = plot.Add.Scatter(shown.Select(p => p.X).ToArray(), shown.Select(p => Y(p.Y)).ToArray(), color);
                dots.LineWidth = 0;
                dots.MarkerSize = 7;
                dots.LegendText = line.Label;
                tags.AddRange(shown.Where(p => !string.IsNullOrEmpty(p.Tag)).Select(p => (p.X, Y(p.Y), p.Tag!, color)));
                continue;
            }
            if (line.Style == SeriesStyle.Excluded)
            {
                // Drawn once the limits are known, and never allowed to set them: untrusted values must not squash the rest.
                excluded.AddRange(points.Where(p => double.IsFinite(p.Y)).Select(p => (p.X, Y(p.Y))));
                excludedLabel ??= line.Label;
                xs.AddRange(points.Where(p => double.IsFinite(p.Y)).Select(p => p.X));
                continue;
            }
            var drawn = points.Count(p => double.IsFinite(p.Y));
            var legend = true;
            foreach (var run in Runs(points))
            {
                var px = run.Select(p => p.X).ToArray();
                var py = run.Select(p => Y(p.Y)).ToArray();
                xs.AddRange(px);
                ys.AddRange(py);
                var banded = run.Where(p => double.IsFinite(p.Sem) && p.Sem > 0).ToList();
                if (banded.Count > 0)
                {
                    anyBand = true;
                    var low = banded.Select(p => Y(IsLogY ? Math.Max(p.Y - p.Sem, p.Y / 10) : p.Y - p.Sem)).ToArray();
                    var high = banded.Select(p => Y(p.Y + p.Sem)).ToArray();
                    var band = plot.Add.FillY(banded.Select(p => p.X).ToArray(), low, high);
                    band.FillColor = color.WithAlpha(FigureStyle.BandAlpha);
                    band.LineWidth = 0;
                    ys.AddRange(low);
                    ys.AddRange(high);
                }
                var scatter = plot.Add.Scatter(px, py, color);
                scatter.LineWidth = FigureStyle.LineWidth;
                scatter.LinePattern = line.Dashed ? LinePattern.Dashed : LinePattern.Solid;
                scatter.MarkerSize = line.Style == SeriesStyle.Steps ? 9 : drawn <= FigureStyle.MarkersUpTo ? 5 : 0;
                if (line.Style == SeriesStyle.Steps)
                {
                    scatter.ConnectStyle = ConnectStyle.StepHorizontal;
                    scatter.MarkerShape = MarkerShape.OpenDiamond;
                }
                scatter.LegendText = legend ? line.Label : "";
                legend = false;
            }
        }
        foreach (var (label, y, color) in _references)
        {
            if (IsLogY && y <= 0) continue;
            var h = plot.Add.HorizontalLine(Y(y), FigureStyle.LineWidth, color ?? FigureStyle.SeriesColor(colour++), LinePattern.Dashed);
            h.LegendText = $"{label} ({Format(y)})";
            ys.Add(Y(y));
        }
        if (double.IsFinite(_chance) && !(IsLogY && _chance <= 0))
        {
            var h = plot.Add.HorizontalLine(Y(_chance), 1, FigureStyle.Chance, LinePattern.Dotted);
            h.LegendText = _chanceLabel!;
            ys.Add(Y(_chance));
        }
        foreach (var (_, x) in _markers.Where(m => !IsLogX || m.X > 0))
        {
            plot.Add.VerticalLine(X(x), 1, FigureStyle.Marker, LinePattern.Dotted);
            xs.Add(X(x));
        }
        if (anyBand)
        {
            // A legend entry for what the shading means; an empty plottable list, so nothing is drawn in the data area.
            plot.Legend.ManualItems.Add(new LegendItem { LabelText = BandLabel, FillColor = Colors.Gray.WithAlpha(FigureStyle.BandAlpha), LineWidth = 0 });
        }
        ys.AddRange(_includeY.Where(y => !IsLogY || y > 0).Select(Y));

        var hasData = xs.Count > 0 && ys.Count > 0;
        var (x0, x1) = _categories is { } categories ? (-0.5, Math.Max(1, categories.Count) - 0.5) : hasData ? Range(xs, IsLogX) : IsLogX ? (-1, 0) : (0, 1);
        var (y0, y1) = ys.Count > 0 ? Range(ys, IsLogY) : IsLogY ? (-1, 0) : (0, 1);
        // A tag is written above its point: room for the tag of the highest one inside the frame.
        if (tags.Count > 0) y1 += (y1 - y0) * 0.06;
        plot.Axes.SetLimits(x0, x1, y0, y1);
        if (IsLogY) plot.Axes.Left.TickGenerator = LogTicks(y0, y1, _lines.SelectMany(l => l.Points).Select(p => p.Y).Where(v => v > 0).Distinct().Take(2).ToList());
        if (IsLogX) plot.Axes.Bottom.TickGenerator = LogTicks(x0, x1, _lines.SelectMany(l => l.Points).Where(p => double.IsFinite(p.Y)).Select(p => p.X).Where(v => v > 0).Distinct().Take(2).ToList());
        if (_categories is { } named)
        {
            var ticks = new NumericManual();
            for (var i = 0; i < named.Count; i++) ticks.AddMajor(i, named[i]);
            plot.Axes.Bottom.TickGenerator = ticks;
        }
        else if (_integerX) plot.Axes.Bottom.TickGenerator = new NumericAutomatic { IntegerTicksOnly = true };
        if (excluded.Count > 0)
        {
            var greyed = plot.Add.Scatter(excluded.Select(p => p.X).ToArray(), excluded.Select(p => p.Y).ToArray(), FigureStyle.Excluded);
            greyed.LineWidth = 0;
            greyed.MarkerSize = 6;
            greyed.MarkerShape = MarkerShape.OpenCircle;
            var offScale = excluded.Count(p => p.Y < y0 || p.Y > y1);
            greyed.LegendText = offScale == 0 ? excludedLabel! : $"{excludedLabel} ({offScale} off scale)";
        }
        foreach (var (x, y, text, color) in tags)
        {
            var tag = plot.Add.Text(text, x, y);
            tag.LabelAlignment = Alignment.LowerLeft;
            tag.OffsetX = 4;
            tag.OffsetY = -4;
            tag.LabelFontSize = FigureStyle.TickFontSize;
            tag.LabelFontColor = color;
        }
        foreach (var (label, x) in _markers.Where(m => !IsLogX || m.X > 0))
        {
            // Inside the data area at the top, just right of the line: a tag on the axis would cover the panel title.
            var tag = plot.Add.Text(label, X(x), y1);
            tag.LabelAlignment = Alignment.UpperLeft;
            tag.OffsetX = 3;
            tag.OffsetY = 3;
            tag.LabelFontSize = FigureStyle.TickFontSize;
            tag.LabelFontColor = FigureStyle.Marker;
        }
        if (!hasData)
        {
            var note = plot.Add.Text("no data", (x0 + x1) / 2, (y0 + y1) / 2);
            note.LabelAlignment = Alignment.MiddleCenter;
            note.LabelFontColor = FigureStyle.Excluded;
            note.LabelFontSize = FigureStyle.PanelTitleFontSize;
        }
        if (plot.GetPlottables().Any(p => p.LegendItems.Any(i => !string.IsNullOrEmpty(i.LabelText))) || plot.Legend.ManualItems.Count > 0)
            plot.ShowLegend(Edge.Right);
    }

    private double Y(double y) => IsLogY ? Math.Log10(y) : y;

    private double X(double x) => IsLogX ? x > 0 ? Math.Log10(x) : double.NaN : x;

    /// <summary>The data's range padded by 5 % each side; a single value gets ±50 % of itself (log: ± half a decade).</summary>
    private static (double Low, double High) Range(IReadOnlyCollection<double> values, bool log)
    {
        var (low, high) = (values.Min(), values.Max());
        if (high - low < 1e-12 * Math.Max(1, Math.Abs(high)))
        {
            var half = log ? 0.5 : Math.Abs(low) > 0 ? Math.Abs(low) / 2 : 0.5;
            return (low - half, high + half);
        }
        var pad = (high - low) * Padding;
        return (low - pad, high + pad);
    }

    /// <summary>
    /// Major ticks at 1, 2, 5 × 10^k within [low, high] (log10 units), thinned to decades when the range is wide, in
    /// scientific notation; a constant series gets a tick at its value (majors too close to it give way); minor ticks
    /// at the other integers × 10^k.
    /// </summary>
    private static NumericManual LogTicks(double low, double high, IReadOnlyList<double> values)
    {
        var constant = values.Count == 1 ? Math.Log10(values[0]) : double.NaN;
        var ticks = new NumericManual();
        var mantissas = high - low > 3 ? new[] { 1 } : [1, 2, 5];
        for (var k = (int)Math.Floor(low) - 1; k <= (int)Math.Ceiling(high) + 1; k++)
        {
            for (var m = 1; m <= 9; m++)
            {
                var value = m * Math.Pow(10, k);
                var log = Math.Log10(value);
                if (log < low || log > high) continue;
                if (mantissas.Contains(m) && !(Math.Abs(log - constant) < 0.15)) ticks.AddMajor(log, Scientific(value));
                else ticks.AddMinor(log);
            }
        }
        if (double.IsFinite(constant)) ticks.AddMajor(constant, Scientific(values[0]));
        return ticks;
    }

    /// <summary>Short, culture-free numbers: 3 significant digits, scientific below 0.01 (e.g. 1e-3, 7.6e-3).</summary>
    public static string Format(double value) =>
        value != 0 && Math.Abs(value) is < 0.01 or >= 1e5 ? Scientific(value) : value.ToString("G3", CultureInfo.InvariantCulture);

    /// <summary>Scientific notation with up to 3 significant digits: 1e-3, 7.6e-3, 2.5e4.</summary>
    public static string Scientific(double value)
    {
        if (value == 0 || !double.IsFinite(value)) return value.ToString(CultureInfo.InvariantCulture);
        var exponent = (int)Math.Floor(Math.Log10(Math.Abs(value)));
        var mantissa = Math.Round(value / Math.Pow(10, exponent), 2);
        if (Math.Abs(mantissa) >= 10) (mantissa, exponent) = (mantissa / 10, exponent + 1);
        return $"{mantissa.ToString("0.##", CultureInfo.InvariantCulture)}e{exponent.ToString(CultureInfo.InvariantCulture)}";
    }

    /// <summary>Points with a finite x, sorted by x; a non-finite y stays, as a gap.</summary>
    private static IReadOnlyList<(double X, double Y, double Sem)> Clean(IEnumerable<(double X, double Y, double Sem)> points) =>
        [.. points.Where(p => double.IsFinite(p.X)).Select(p => (p.X, double.IsFinite(p.Y) ? p.Y : double.NaN, p.Sem)).OrderBy(p => p.X)];

    /// <summary>The runs of consecutive finite points: a line is broken where a value is missing, never drawn across it.</summary>
    private static IEnumerable<List<(double X, double Y, double Sem)>> Runs(IEnumerable<(double X, double Y, double Sem)> points)
    {
        var run = new List<(double X, double Y, double Sem)>();
        foreach (var p in points)
        {
            if (double.IsFinite(p.Y))
            {
                run.Add(p);
                continue;
            }
            if (run.Count > 0) yield return run;
            run = [];
        }
        if (run.Count > 0) yield return run;
    }

    private enum SeriesStyle { Line, Steps, Points, Excluded }

    /// <param name="Tags">For <see cref="SeriesStyle.Points"/>: one per point (in <paramref name="Points"/>' order), or null.</param>
    private sealed record LineSeries(string Label, IReadOnlyList<(double X, double Y, double Sem)> Points, Color? Color, bool Dashed, SeriesStyle Style,
        IReadOnlyList<string?>? Tags = null);
}
