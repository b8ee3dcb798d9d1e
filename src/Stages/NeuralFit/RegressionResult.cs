namespace Pipeline.Stages.NeuralFit;

/// <summary>
/// One cross-validated fit of an area: Pearson r on held-out stimuli per [split, site], the splits used, and what the
/// fit chose (PLS iterations per component, or ridge penalties per site). Scores follow Brain-Score: the median over
/// sites per split, then mean ± SEM over splits; with a ceiling, each site's r is divided by its ceiling first.
/// </summary>
public sealed record RegressionResult(RegressionKind Kind, double[,] PerSplitPerSiteR, IReadOnlyList<(int[] Train, int[] Test)> Splits)
{
    /// <summary>PLS: NIPALS iterations per [split, component]; null for ridge.</summary>
    public int[,]? PlsIterations { get; init; }

    /// <summary>Ridge: the inner-CV penalty per [split, site]; null for PLS.</summary>
    public double[,]? RidgeAlphas { get; init; }

    public int SplitCount => PerSplitPerSiteR.GetLength(0);
    public int SiteCount => PerSplitPerSiteR.GetLength(1);

    /// <summary>r / ceiling per [split, site] (noise-corrected predictivity); NaN where the ceiling is not positive.</summary>
    public double[,] NoiseCorrected(IReadOnlyList<double> ceiling)
    {
        if (ceiling.Count != SiteCount) throw new ArgumentException($"{ceiling.Count} ceilings for {SiteCount} sites.", nameof(ceiling));
        var result = new double[SplitCount, SiteCount];
        for (var s = 0; s < SplitCount; s++)
            for (var i = 0; i < SiteCount; i++)
                result[s, i] = ceiling[i] > 0 ? PerSplitPerSiteR[s, i] / ceiling[i] : double.NaN;
        return result;
    }

    /// <summary>
    /// Per split, the median over sites of r (or of r / ceiling). Sites whose value is NaN — constant predictions or
    /// responses in that test set, or a non-positive ceiling — are left out of the median.
    /// </summary>
    public double[] SiteMedians(IReadOnlyList<double>? ceiling = null)
    {
        var values = ceiling is null ? PerSplitPerSiteR : NoiseCorrected(ceiling);
        return [.. Enumerable.Range(0, SplitCount).Select(s => Median(Enumerable.Range(0, SiteCount).Select(i => values[s, i])))];
    }

    /// <summary>The area score: mean over splits of <see cref="SiteMedians"/>, and its standard error (sample SD / √splits).</summary>
    public (double Mean, double Sem) OverSplits(IReadOnlyList<double>? ceiling = null) => MeanAndSem(SiteMedians(ceiling));

    /// <summary>Each site's r averaged over splits (per-site predictivity, e.g. to assign sites to layers).</summary>
    public double[] SiteMeans() =>
        [.. Enumerable.Range(0, SiteCount).Select(i => Enumerable.Range(0, SplitCount).Average(s => PerSplitPerSiteR[s, i]))];

    internal static double Median(IEnumerable<double> values)
    {
        var sorted = values.Where(v => !double.IsNaN(v)).Order().ToArray();
        if (sorted.Length == 0) return double.NaN;
        var mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }

    internal static (double Mean, double Sem) MeanAndSem(IReadOnlyList<double> values)
    {
        var mean = values.Average();
        if (values.Count < 2) return (mean, double.NaN);
        var variance = values.Sum(v => (v - mean) * (v - mean)) / (values.Count - 1);
        return (mean, Math.Sqrt(variance / values.Count));
    }
}
