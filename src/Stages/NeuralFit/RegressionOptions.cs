using Pipeline.Stages.Execution;

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

    /// <summary>What cannot work, each error naming its field (the neural-fit params' names): the one set of bounds.</summary>
    public IEnumerable<ValidationError> Errors()
    {
        if (PlsComponents is < 1 or > 1000) yield return new("pls_components", $"must be between 1 and 1000; got {PlsComponents}.");
        if (PlsMaxIterations < 1) yield return new("pls_max_iterations", $"must be at least 1; got {PlsMaxIterations}.");
        if (PlsTolerance < 0) yield return new("pls_tolerance", $"must be 0 or positive; got {PlsTolerance}.");
        if (Splits is < 2 or > 100) yield return new("splits", $"must be between 2 and 100; got {Splits}.");
        if (!(TestFraction is > 0 and <= 0.5)) yield return new("test_fraction", $"must be in (0, 0.5]; got {TestFraction}.");
        if (InnerFolds is < 2 or > 20) yield return new("inner_folds", $"must be between 2 and 20; got {InnerFolds}.");
        if (RidgeAlphas.Count == 0 || RidgeAlphas.Any(a => !(a > 0))) yield return new("ridge_alphas", "needs at least one positive penalty.");
        if (Seed < 0) yield return new("seed", $"must be 0 or positive; got {Seed}.");
    }

    /// <summary>Throws with the field's name when a value cannot work (<see cref="Errors"/>).</summary>
    public void Validate()
    {
        if (Errors().FirstOrDefault() is { } e) throw new ArgumentOutOfRangeException(e.Field, e.Message);
    }
}
