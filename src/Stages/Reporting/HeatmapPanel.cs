using System.Globalization;
using ScottPlot;

namespace Pipeline.Stages.Reporting;

/// <summary>
/// A table of values as coloured cells (viridis), each cell's value written in it, named rows and columns, a colour
/// bar with its label to the right, and chosen cells outlined (e.g. the best layer of each area). The colour range is
/// the data's; empty cells (null or non-finite) are light grey with a dash.
/// </summary>
/// <example>
/// <code>
/// var panel = new HeatmapPanel("mean noise-corrected r over bins", "area", "layer", "noise-corrected r", areas, layers, values)
///     .Outline(row: 2, column: 0);
/// var png = new Figure("rgc-shallow → monkey", panel).Png();
/// </code>
/// </example>
public sealed class HeatmapPanel : IFigurePanel
{
    private readonly double?[,] _values;
    private readonly List<(int Row, int Column)> _outlined = [];

    /// <param name="values">[row, column]; row 0 is drawn at the top.</param>
    public HeatmapPanel(string title, string xLabel, string yLabel, string colorBarLabel, IReadOnlyList<string> columns, IReadOnlyList<string> rows, double?[,] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.GetLength(0) != rows.Count || values.GetLength(1) != columns.Count)
            throw new ArgumentException($"values are {values.GetLength(0)}×{values.GetLength(1)} for {rows.Count} rows × {columns.Count} columns.", nameof(values));
        (Title, XLabel, YLabel, ColorBarLabel, Columns, Rows, _values) = (title, xLabel, yLabel, colorBarLabel, columns, rows, values);
    }

    public string Title { get; }
    public string XLabel { get; }
    public string YLabel { get; }
    public string ColorBarLabel { get; }
    public IReadOnlyList<string> Columns { get; }
    public IReadOnlyList<string> Rows { get; }

    /// <summary>What an outlined cell means, written under the title (e.g. "outlined: best layer").</summary>
    public string? OutlineLabel { get; set; }

    public (int Width, int Height) Size => (Math.Max(460, 260 + (120 * Columns.Count)), Math.Max(320, 130 + (40 * Rows.Count)));

    public HeatmapPanel Outline(int row, int column)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(row);
        ArgumentOutOfRangeException.ThrowIfNegative(column);
        _outlined.Add((row, column));
        return this;
    }

    public void Draw(Plot plot)
    {
        var (rows, columns) = (Rows.Count, Columns.Count);
        plot.Title(OutlineLabel is null ? Title : $"{Title}\n{OutlineLabel}", FigureStyle.PanelTitleFontSize);
        plot.XLabel(XLabel, FigureStyle.AxisLabelFontSize);
        plot.YLabel(YLabel, FigureStyle.AxisLabelFontSize);
        var finite = new List<double>();
        var intensities = new double[Math.Max(1, rows), Math.Max(1, columns)];
        for (var r = 0; r < rows; r++)
        {
            for (var c = 0; c < columns; c++)
            {
                var v = _values[r, c] is { } x && double.IsFinite(x) ? x : double.NaN;
                intensities[r, c] = v;
                if (!double.IsNaN(v)) finite.Add(v);
            }
        }
        if (rows == 0 || columns == 0) intensities[0, 0] = double.NaN;
        var (low, high) = finite.Count == 0 ? (0.0, 1.0) : (finite.Min(), finite.Max());
        if (high - low < 1e-12) (low, high) = (low - 0.5, high + 0.5);

        var heatmap = plot.Add.Heatmap(intensities);
        heatmap.Colormap = new ScottPlot.Colormaps.Viridis();
        heatmap.ManualRange = new ScottPlot.Range(low, high);
        heatmap.NaNCellColor = Colors.LightGray;
        heatmap.Rectangle = new CoordinateRect(0, Math.Max(1, columns), 0, Math.Max(1, rows));   // the cells' edges, not their centres (Position)
        var bar = plot.Add.ColorBar(heatmap, Edge.Right);
        bar.Label = ColorBarLabel;
        bar.LabelStyle.FontSize = FigureStyle.AxisLabelFontSize;

        for (var r = 0; r < rows; r++)
        {
            for (var c = 0; c < columns; c++)
            {
                var v = intensities[r, c];
                var text = plot.Add.Text(double.IsNaN(v) ? "–" : v.ToString("F2", CultureInfo.InvariantCulture), c + 0.5, rows - r - 0.5);
                text.LabelFontSize = 13;
                text.LabelAlignment = Alignment.MiddleCenter;
                // Dark text on viridis' light (yellow-green) end, white on its dark (purple) end.
                text.LabelFontColor = !double.IsNaN(v) && (v - low) / (high - low) > 0.6 ? Colors.Black : double.IsNaN(v) ? Colors.DimGray : Colors.White;
            }
        }
        foreach (var (r, c) in _outlined.Where(o => o.Row < rows && o.Column < columns))
        {
            var rect = plot.Add.Rectangle(c + 0.04, c + 0.96, rows - r - 0.96, rows - r - 0.04);
            rect.FillStyle.Color = Colors.Transparent;
            rect.LineStyle.Width = 3;
            rect.LineStyle.Color = Colors.Red;
        }
        plot.Axes.Bottom.SetTicks([.. Enumerable.Range(0, columns).Select(c => c + 0.5)], [.. Columns]);
        plot.Axes.Left.SetTicks([.. Enumerable.Range(0, rows).Select(r => rows - r - 0.5)], [.. Rows]);
        plot.Axes.SetLimits(0, Math.Max(1, columns), 0, Math.Max(1, rows));
        plot.Grid.IsVisible = false;
    }
}
