using System.Globalization;
using System.Text;

namespace Pipeline.Stages.NeuralFit;

/// <summary>The layer that best predicts an area over the fitted bins (mean noise-corrected predictivity over bins).</summary>
/// <param name="ByLayer">Every layer's mean over the bins, in layer order (null where no bin had a usable ceiling).</param>
/// <param name="GeneratingLayer">The layer a virtual monkey read this area from, when the data says so.</param>
public sealed record AreaBestLayer(string Area, string Method, string Layer, double? Score, IReadOnlyDictionary<string, double?> ByLayer, string? GeneratingLayer)
{
    public bool? MatchesGeneratingLayer => GeneratingLayer is null ? null : GeneratingLayer == Layer;
}

/// <summary>One bin of an area's temporal profile: the ceiling, the time-averaged best layer's score there, and the best
/// layer of this bin alone.</summary>
public sealed record ProfilePoint(int BinStartMs, int BinEndMs, double? Ceiling, double? BestLayerScore, double? BestLayerSem, string BinBestLayer, double? BinBestScore);

/// <summary>An area's predictivity over time (the temporal profile), for one method.</summary>
public sealed record TemporalProfile(string Area, string Method, string BestLayer, IReadOnlyList<ProfilePoint> Points);

/// <summary>
/// Summaries of a predictivity table: best layer per area (time-averaged and per bin) and the temporal profile per area.
/// Scores are noise-corrected; when an area has no bin with a positive ceiling, raw r ranks the layers instead.
/// </summary>
public static class PredictivityReport
{
    public static IReadOnlyList<AreaBestLayer> BestLayers(IReadOnlyList<PredictivityRow> rows, IReadOnlyDictionary<string, string>? generating = null) =>
        [.. rows.GroupBy(r => (r.Area, r.Method)).Select(g =>
        {
            var byLayer = LayerMeans(g);
            var best = byLayer.Where(kv => kv.Value is not null).OrderByDescending(kv => kv.Value).Select(kv => kv.Key).FirstOrDefault() ?? byLayer.Keys.First();
            return new AreaBestLayer(g.Key.Area, g.Key.Method, best, byLayer[best], byLayer, generating?.GetValueOrDefault(g.Key.Area));
        })];

    public static IReadOnlyList<TemporalProfile> Profiles(IReadOnlyList<PredictivityRow> rows) =>
        [.. BestLayers(rows).Select(best =>
        {
            var area = rows.Where(r => r.Area == best.Area && r.Method == best.Method).ToList();
            var points = area.GroupBy(r => r.BinStartMs).OrderBy(g => g.Key).Select(bin =>
            {
                var mine = bin.First(r => r.Layer == best.Layer);
                var top = bin.OrderByDescending(r => Score(r) ?? double.NegativeInfinity).First();
                return new ProfilePoint(bin.Key, mine.BinEndMs, Finite(mine.Ceiling), Score(mine), Finite(double.IsFinite(mine.NoiseCorrected) ? mine.Sem : mine.RawSem), top.Layer, Score(top));
            });
            return new TemporalProfile(best.Area, best.Method, best.Layer, [.. points]);
        })];

    /// <summary>Per layer (in table order), the mean noise-corrected score over the bins with a positive ceiling.</summary>
    private static Dictionary<string, double?> LayerMeans(IEnumerable<PredictivityRow> rows)
    {
        var list = rows.ToList();
        var ceiled = UsesCeiling(list);
        var result = new Dictionary<string, double?>(StringComparer.Ordinal);
        foreach (var layer in list.Select(r => r.Layer).Distinct())
        {
            var values = list.Where(r => r.Layer == layer).Select(r => ceiled ? r.NoiseCorrected : r.RawR).Where(double.IsFinite).ToList();
            result[layer] = values.Count == 0 ? null : values.Average();
        }
        return result;
    }

    private static bool UsesCeiling(IEnumerable<PredictivityRow> rows) => rows.Any(r => double.IsFinite(r.NoiseCorrected));

    private static double? Score(PredictivityRow r) => Finite(double.IsFinite(r.NoiseCorrected) ? r.NoiseCorrected : r.RawR);

    /// <summary>NaN and infinities become null (JSON has no NaN).</summary>
    public static double? Finite(double value) => double.IsFinite(value) ? value : null;

    public static readonly string CsvHeader = "area,bin_start_ms,bin_end_ms,model_step,layer,method,sites,raw_r,raw_sem,ceiling,noise_corrected,sem,noise_corrected_sqrt";

    /// <summary>The table as CSV (invariant culture; an empty cell where a value is undefined).</summary>
    public static string Csv(IReadOnlyList<PredictivityRow> rows)
    {
        var sb = new StringBuilder(CsvHeader).Append('\n');
        foreach (var r in rows)
        {
            sb.AppendJoin(',', r.Area, r.BinStartMs.ToString(CultureInfo.InvariantCulture), r.BinEndMs.ToString(CultureInfo.InvariantCulture),
                r.Step.ToString(CultureInfo.InvariantCulture), r.Layer, r.Method, r.Sites.ToString(CultureInfo.InvariantCulture),
                Cell(r.RawR), Cell(r.RawSem), Cell(r.Ceiling), Cell(r.NoiseCorrected), Cell(r.Sem), Cell(r.NoiseCorrectedSqrt)).Append('\n');
        }
        return sb.ToString();
    }

    private static string Cell(double v) => double.IsFinite(v) ? v.ToString("G6", CultureInfo.InvariantCulture) : "";
}
