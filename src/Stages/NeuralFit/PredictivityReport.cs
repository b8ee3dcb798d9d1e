using System.Globalization;
using System.Text;

namespace Pipeline.Stages.NeuralFit;

/// <summary>The layer that best predicts an area over the fitted bins (mean noise-corrected predictivity over the bins
/// whose ceiling reaches <see cref="MinCeiling"/>).</summary>
/// <param name="ByLayer">Every layer's mean over those bins, in layer order (null where it has no usable value).</param>
/// <param name="GeneratingLayer">The layer a virtual monkey read this area from, when the data says so.</param>
/// <param name="ScoredBy"><c>noise_corrected</c>; <c>raw_r</c> (over every bin) when no bin of the area reaches the ceiling threshold.</param>
/// <param name="ExcludedBinsMs">The start (ms) of each bin left out because its ceiling is below <see cref="MinCeiling"/>.</param>
public sealed record AreaBestLayer(string Area, string Method, string Layer, double? Score, IReadOnlyDictionary<string, double?> ByLayer, string? GeneratingLayer,
    string ScoredBy, double MinCeiling, IReadOnlyList<int> ExcludedBinsMs)
{
    public bool? MatchesGeneratingLayer => GeneratingLayer is null ? null : GeneratingLayer == Layer;
}

/// <summary>One bin of an area's temporal profile: the ceiling, the time-averaged best layer's score there, and the best
/// layer of this bin alone; <paramref name="BelowMinCeiling"/> when the bin's ceiling is too low to trust its scores.</summary>
public sealed record ProfilePoint(int BinStartMs, int BinEndMs, double? Ceiling, double? BestLayerScore, double? BestLayerSem, string BinBestLayer, double? BinBestScore,
    bool BelowMinCeiling);

/// <summary>An area's predictivity over time (the temporal profile), for one method.</summary>
public sealed record TemporalProfile(string Area, string Method, string BestLayer, IReadOnlyList<ProfilePoint> Points);

/// <summary>
/// Summaries of a predictivity table: best layer per area (time-averaged and per bin) and the temporal profile per area.
/// Scores are noise-corrected, over the bins whose ceiling reaches the threshold (<see cref="NeuralFitParams.MinCeiling"/>):
/// a ceiling near 0 makes r / ceiling noise. When no bin of an area reaches it, raw r over every bin ranks the layers.
/// </summary>
public static class PredictivityReport
{
    public const string NoiseCorrectedScore = "noise_corrected";
    public const string RawScore = "raw_r";

    /// <summary>Whether a row's bin has a ceiling high enough to trust its noise-corrected score.</summary>
    public static bool ReachesCeiling(PredictivityRow row, double minCeiling) =>
        double.IsFinite(row.Ceiling) && row.Ceiling > 0 && row.Ceiling >= minCeiling && double.IsFinite(row.NoiseCorrected);

    public static IReadOnlyList<AreaBestLayer> BestLayers(IReadOnlyList<PredictivityRow> rows, double minCeiling, IReadOnlyDictionary<string, string>? generating = null) =>
        [.. rows.GroupBy(r => (r.Area, r.Method)).Select(g =>
        {
            var list = g.ToList();
            var trusted = list.Any(r => ReachesCeiling(r, minCeiling));
            var byLayer = LayerMeans(list, minCeiling, trusted);
            var best = byLayer.Where(kv => kv.Value is not null).OrderByDescending(kv => kv.Value).Select(kv => kv.Key).FirstOrDefault() ?? byLayer.Keys.First();
            var excluded = list.Where(r => !ReachesCeiling(r, minCeiling)).Select(r => r.BinStartMs).Distinct().Order().ToList();
            return new AreaBestLayer(g.Key.Area, g.Key.Method, best, byLayer[best], byLayer, generating?.GetValueOrDefault(g.Key.Area),
                trusted ? NoiseCorrectedScore : RawScore, minCeiling, excluded);
        })];

    public static IReadOnlyList<TemporalProfile> Profiles(IReadOnlyList<PredictivityRow> rows, double minCeiling) =>
        [.. BestLayers(rows, minCeiling).Select(best =>
        {
            var area = rows.Where(r => r.Area == best.Area && r.Method == best.Method).ToList();
            var points = area.GroupBy(r => r.BinStartMs).OrderBy(g => g.Key).Select(bin =>
            {
                var mine = bin.First(r => r.Layer == best.Layer);
                var top = bin.OrderByDescending(r => Score(r) ?? double.NegativeInfinity).First();
                return new ProfilePoint(bin.Key, mine.BinEndMs, Finite(mine.Ceiling), Score(mine), Finite(double.IsFinite(mine.NoiseCorrected) ? mine.Sem : mine.RawSem), top.Layer, Score(top),
                    !ReachesCeiling(mine, minCeiling));
            });
            return new TemporalProfile(best.Area, best.Method, best.Layer, [.. points]);
        })];

    /// <summary>Per layer (in table order), the mean noise-corrected score over the trusted bins, or else raw r over all bins.</summary>
    private static Dictionary<string, double?> LayerMeans(IReadOnlyList<PredictivityRow> rows, double minCeiling, bool trusted)
    {
        var result = new Dictionary<string, double?>(StringComparer.Ordinal);
        foreach (var layer in rows.Select(r => r.Layer).Distinct())
        {
            var mine = rows.Where(r => r.Layer == layer);
            var values = (trusted ? mine.Where(r => ReachesCeiling(r, minCeiling)).Select(r => r.NoiseCorrected) : mine.Select(r => r.RawR)).Where(double.IsFinite).ToList();
            result[layer] = values.Count == 0 ? null : values.Average();
        }
        return result;
    }

    private static double? Score(PredictivityRow r) => Finite(double.IsFinite(r.NoiseCorrected) ? r.NoiseCorrected : r.RawR);

    /// <summary>NaN and infinities become null (JSON has no NaN).</summary>
    public static double? Finite(double value) => double.IsFinite(value) ? value : null;

    public static readonly string CsvHeader = "area,bin_start_ms,bin_end_ms,model_step,layer,method,sites,raw_r,raw_sem,ceiling,noise_corrected,sem,noise_corrected_sqrt,below_min_ceiling";

    /// <summary>The table as CSV (invariant culture; an empty cell where a value is undefined; <c>below_min_ceiling</c>
    /// true for rows left out of the best-layer choice).</summary>
    public static string Csv(IReadOnlyList<PredictivityRow> rows, double minCeiling)
    {
        var sb = new StringBuilder(CsvHeader).Append('\n');
        foreach (var r in rows)
        {
            sb.AppendJoin(',', r.Area, r.BinStartMs.ToString(CultureInfo.InvariantCulture), r.BinEndMs.ToString(CultureInfo.InvariantCulture),
                r.Step.ToString(CultureInfo.InvariantCulture), r.Layer, r.Method, r.Sites.ToString(CultureInfo.InvariantCulture),
                Cell(r.RawR), Cell(r.RawSem), Cell(r.Ceiling), Cell(r.NoiseCorrected), Cell(r.Sem), Cell(r.NoiseCorrectedSqrt),
                ReachesCeiling(r, minCeiling) ? "false" : "true").Append('\n');
        }
        return sb.ToString();
    }

    private static string Cell(double v) => double.IsFinite(v) ? v.ToString("G6", CultureInfo.InvariantCulture) : "";
}
