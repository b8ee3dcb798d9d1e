using System.Globalization;
using Pipeline.Stages.Reporting;
using ScottPlot;

namespace Pipeline.Stages.NeuralFit;

/// <summary>
/// The neural-fit figures (<see cref="Figure"/>): predictivity over time — one panel per area, one line per layer with
/// its ± SEM band over splits, the area's noise ceiling, the ceiling threshold and the image-off step — and a layer ×
/// area heat map of the time-averaged predictivity with its colour bar.
/// </summary>
public static class PredictivityPlots
{
    /// <summary>
    /// Noise-corrected predictivity against the bin's start, per area, one series per layer (one method). Bins whose
    /// ceiling is below <paramref name="minCeiling"/> are drawn as grey open circles and break the layers' lines.
    /// </summary>
    /// <param name="imageOffMs">When the image goes off in the fitted presentation (the start of the first bin without
    /// it); null when it stays on.</param>
    public static Figure OverTime(IReadOnlyList<PredictivityRow> rows, string method, string title, double minCeiling, int? imageOffMs)
    {
        var mine = rows.Where(r => r.Method == method).ToList();
        var panels = new List<IFigurePanel>();
        foreach (var area in mine.GroupBy(r => r.Area))
        {
            var panel = new LinePanel($"{area.Key} ({method})", "bin start (ms)", "noise-corrected r (r / ceiling)")
            {
                BandLabel = "shaded: ± 1 SEM over splits",
            };
            var bins = area.GroupBy(r => r.BinStartMs).OrderBy(b => b.Key).ToList();
            foreach (var layer in area.GroupBy(r => r.Layer))
            {
                // A bin below the threshold is a gap in the line, its value greyed: r / (ceiling ≈ 0) is noise.
                panel.Line(layer.Key, layer.Select(r => ((double)r.BinStartMs, PredictivityReport.ReachesCeiling(r, minCeiling) ? r.NoiseCorrected : double.NaN, r.Sem)));
            }
            foreach (var layer in area.GroupBy(r => r.Layer))
            {
                panel.Excluded($"ceiling < {Number(minCeiling)}: not used",
                    layer.Where(r => !PredictivityReport.ReachesCeiling(r, minCeiling)).Select(r => ((double)r.BinStartMs, r.NoiseCorrected)));
            }
            panel.Line("noise ceiling (split-half)", bins.Select(b => ((double)b.Key, b.First().Ceiling)), Colors.Black, dashed: true)
                .Reference("min_ceiling", minCeiling, FigureStyle.Excluded);
            if (imageOffMs is { } off) panel.Marker("image off", off);
            panel.IntegerX();
            panels.Add(panel);
        }
        if (panels.Count == 0) panels.Add(new LinePanel(method, "bin start (ms)", "noise-corrected r (r / ceiling)"));
        return new Figure(title, panels);
    }

    /// <summary>Layers (rows, model order) × areas (columns): each cell the layer's mean noise-corrected predictivity
    /// over the bins that reach the ceiling threshold, the best layer outlined.</summary>
    public static Figure Heatmap(IReadOnlyList<AreaBestLayer> best, string title)
    {
        var layers = best.Count > 0 ? best[0].ByLayer.Keys.ToList() : [];
        var values = new double?[layers.Count, best.Count];
        for (var a = 0; a < best.Count; a++)
        {
            for (var l = 0; l < layers.Count; l++)
                values[l, a] = best[a].ByLayer.GetValueOrDefault(layers[l]);
        }
        // An area no bin of which reaches the threshold is ranked by raw r; its column says so.
        var columns = best.Select(b => b.ScoredBy == PredictivityReport.RawScore ? $"{b.Area} (raw r)" : b.Area).ToList();
        var minCeiling = best.Count > 0 ? best[0].MinCeiling : NeuralFitParams.DefaultMinCeiling;
        var panel = new HeatmapPanel($"mean over bins with ceiling ≥ {Number(minCeiling)} ({(best.Count > 0 ? best[0].Method : "-")})", "area", "layer",
            "mean noise-corrected r", columns, layers, values)
        {
            OutlineLabel = "red outline: best layer",
        };
        for (var a = 0; a < best.Count; a++)
        {
            var row = layers.IndexOf(best[a].Layer);
            if (row >= 0) panel.Outline(row, a);
        }
        return new Figure(title, panel);
    }

    private static string Number(double value) => value.ToString("G3", CultureInfo.InvariantCulture);
}
