namespace Pipeline.Stages.NeuralFit;

/// <summary>The regression that maps model features to site responses.</summary>
public enum RegressionKind
{
    /// <summary>PLS2 (partial least squares, one set of components shared by all sites of an area), Brain-Score's default.</summary>
    Pls,

    /// <summary>Ridge regression with a per-site penalty chosen by inner cross-validation.</summary>
    Ridge,
}

/// <summary>
/// How <see cref="NeuralScoring.CrossValidated"/> fits and scores: Brain-Score's defaults (PLS, 25 components, 10
/// stratified splits of 90 % / 10 %). Everything derived from <see cref="Seed"/> is deterministic.
/// </summary>
public sealed record RegressionOptions
{
    public RegressionKind Kind { get; init; } = RegressionKind.Pls;

    /// <summary>PLS components (Brain-Score: 25). Capped at the number of features.</summary>
    public int PlsComponents { get; init; } = 25;

    /// <summary>NIPALS inner-loop limit and tolerance on the squared change of the X weights (scikit-learn's defaults).</summary>
    public int PlsMaxIterations { get; init; } = 500;

    public double PlsTolerance { get; init; } = 1e-6;

    /// <summary>The ridge penalties tried by inner cross-validation; a log grid from 1e-3 to 1e5 by default.</summary>
    public IReadOnlyList<double> RidgeAlphas { get; init; } = LogGrid(1e-3, 1e5, 17);

    /// <summary>Inner folds (stratified by object) that choose each site's ridge penalty on the training set only.</summary>
    public int InnerFolds { get; init; } = 5;

    public int Splits { get; init; } = 10;

    public double TestFraction { get; init; } = 0.1;

    public long Seed { get; init; }

    /// <summary>"cpu", "cuda", "cuda:N" or "auto" (see <see cref="Models.ComputeDevice"/>).</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>
    /// Upper bound on the bytes of the per-split second moments (p×p and p×q, float64) fitted at once; splits are fitted
    /// in batches that fit in it. 256 MB holds all 10 HvM-size splits (1,000 features, 256 sites).
    /// </summary>
    public long BatchBytes { get; init; } = 256L << 20;

    /// <summary><paramref name="count"/> values evenly spaced in log10 from <paramref name="low"/> to <paramref name="high"/>.</summary>
    public static double[] LogGrid(double low, double high, int count)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 2);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(low);
        var (a, b) = (Math.Log10(low), Math.Log10(high));
        return [.. Enumerable.Range(0, count).Select(i => Math.Pow(10, a + ((b - a) * i / (count - 1))))];
    }

    /// <summary>Throws with the field's name when a value cannot work.</summary>
    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(PlsComponents, 1, nameof(PlsComponents));
        ArgumentOutOfRangeException.ThrowIfLessThan(PlsMaxIterations, 1, nameof(PlsMaxIterations));
        ArgumentOutOfRangeException.ThrowIfNegative(PlsTolerance, nameof(PlsTolerance));
        ArgumentOutOfRangeException.ThrowIfLessThan(Splits, 1, nameof(Splits));
        ArgumentOutOfRangeException.ThrowIfLessThan(InnerFolds, 2, nameof(InnerFolds));
        if (!(TestFraction > 0 && TestFraction < 1)) throw new ArgumentOutOfRangeException(nameof(TestFraction), TestFraction, "must be in (0, 1)");
        if (RidgeAlphas.Count == 0 || RidgeAlphas.Any(a => !(a > 0))) throw new ArgumentOutOfRangeException(nameof(RidgeAlphas), "needs at least one positive penalty");
    }
}
