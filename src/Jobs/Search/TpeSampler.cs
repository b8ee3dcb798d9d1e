// The tree-structured Parzen estimator (Bergstra et al. 2011) as Optuna's independent TPESampler defines it
// (optuna/samplers/_tpe: sampler.py, parzen_estimator.py, probability_distributions.py), written here from that
// published algorithm, not copied. No .NET library on the package feed provides TPE, so it is plain code with tests.
using System.Text.Json.Nodes;

namespace Pipeline.Jobs.Search;

/// <summary>
/// Optuna's defaults: <c>n_startup_trials</c> 10, <c>n_ei_candidates</c> 24, <c>prior_weight</c> 1, magic clip on,
/// endpoints off, and the constant liar on (off in Optuna; here it is what spreads parallel proposals).
/// </summary>
public sealed record TpeOptions
{
    /// <summary>Random proposals until this many trials are completed or pruned.</summary>
    public int StartupTrials { get; init; } = 10;

    /// <summary>Candidates drawn from l(x), per parameter, of which the best l(x)/g(x) is proposed.</summary>
    public int EiCandidates { get; init; } = 24;

    public double PriorWeight { get; init; } = 1.0;

    /// <summary>Running trials count as the worst trials (in g, never in l), so proposals made while they run move away from them.</summary>
    public bool ConstantLiar { get; init; } = true;
}

/// <summary>
/// Independent TPE. The completed and pruned trials are ranked (completed by objective; pruned after them, the deeper
/// the rung the better, then by the value they were stopped with); the best γ(n) = min(⌈0.1·n⌉, 25) form the good set,
/// the rest (and, with the liar, the running trials) the bad set. For each active parameter, one Parzen estimator is fitted
/// on the good trials where it was active, l(x), one on the bad ones, g(x); 24 candidates are drawn from l and the one
/// with the largest log l(x) − log g(x) is proposed. Candidates come from a stream fixed by the seed and the number of
/// finished trials: proposals from the same history differ only through the liar.
/// </summary>
public sealed class TpeSampler : ISampler
{
    private readonly SearchSpace _space;
    private readonly int _seed;
    private readonly ObjectiveDirection _direction;
    private readonly TpeOptions _options;
    private readonly RandomSampler _startup;

    public TpeSampler(SearchSpace space, int seed, ObjectiveDirection direction, TpeOptions? options = null)
    {
        space.EnsureValid();
        (_space, _seed, _direction, _options) = (space, seed, direction, options ?? new TpeOptions());
        _startup = new RandomSampler(space, seed);
    }

    public Assignment? Propose(IReadOnlyList<Trial> history, IReadOnlyList<Assignment> running)
    {
        var finished = history.Where(t => t.HasObjective || t.Status == TrialStatus.Pruned).ToList();
        if (finished.Count < _options.StartupTrials) return _startup.Propose(history, running);

        var ranked = finished.Select((t, i) => (Trial: t, Order: i)).OrderBy(x => Rank(x.Trial)).ToList();
        var nBelow = Math.Min((int)Math.Ceiling(0.1 * finished.Count), 25);
        var below = ranked.Take(nBelow).OrderBy(x => x.Order).Select(x => x.Trial.Assignment).ToList();
        var above = ranked.Skip(nBelow).OrderBy(x => x.Order).Select(x => x.Trial.Assignment).ToList();
        if (_options.ConstantLiar)
            above.AddRange(running.Concat(history.Where(t => t.Status == TrialStatus.Running).Select(t => t.Assignment)));

        var rng = SeedStreams.For(_seed, history.Count(t => t.Status != TrialStatus.Running));
        var assignment = new Assignment();
        foreach (var path in _space.DecisionOrder())
        {
            if (!_space.IsActive(path, assignment)) continue;
            var p = _space[path];
            var l = ParzenEstimator.Fit(p, Observed(below, path), _options.PriorWeight);
            var g = ParzenEstimator.Fit(p, Observed(above, path), _options.PriorWeight);
            var (best, bestScore) = (double.NaN, double.NegativeInfinity);
            for (var i = 0; i < _options.EiCandidates; i++)
            {
                var x = l.Sample(rng);
                var score = l.LogPdf(x) - g.LogPdf(x);
                if (double.IsNaN(best) || score > bestScore) (best, bestScore) = (x, score);
            }
            assignment[path] = ParzenEstimator.External(p, best);
        }
        return assignment;
    }

    /// <summary>Optuna's ordering key (smaller is better): completed first by objective, then pruned by rung reached, then value.</summary>
    private (double Stage, double Score) Rank(Trial t)
    {
        var sign = _direction == ObjectiveDirection.Minimize ? 1.0 : -1.0;
        if (t.Status == TrialStatus.Completed) return (double.NegativeInfinity, sign * t.Objective!.Value);
        if (t.Objective is not { } v) return (double.PositiveInfinity, 0);
        return (-(t.Step ?? 0), double.IsNaN(v) ? double.PositiveInfinity : sign * v);
    }

    private static List<JsonNode> Observed(List<Assignment> trials, string path) =>
        [.. trials.Where(a => a.ContainsKey(path)).Select(a => a[path])];
}

/// <summary>
/// A one-parameter Parzen estimator: a weighted mixture of one kernel per observation plus a prior kernel. Numeric
/// parameters (in log space for log_uniform; an int's range widened by step/2 each side and discretised to its steps):
/// truncated Gaussians at the observations, each σ the larger gap to its sorted neighbours (the end kernels: their inner
/// gap), clipped to [range / min(100, n + 2), range]; the prior at mid-range with σ = range. Choices: each observation
/// puts prior_weight/(n + 1) on every value and 1 more on its own, renormalised; the prior is uniform. Mixture weights:
/// 1 per observation (for n ≥ 25 the oldest n − 25 ramp linearly from 1/n up to 1), prior_weight for the prior.
/// </summary>
internal sealed class ParzenEstimator
{
    private readonly double[] _weights;
    private readonly double[] _mus = [], _sigmas = [];
    private readonly double[][] _probabilities = [];
    private readonly double _low, _high, _step;
    private readonly bool _isChoice;

    private ParzenEstimator(double[] weights, double[] mus, double[] sigmas, double low, double high, double step) =>
        (_weights, _mus, _sigmas, _low, _high, _step) = (weights, mus, sigmas, low, high, step);

    private ParzenEstimator(double[] weights, double[][] probabilities) =>
        (_weights, _probabilities, _isChoice) = (weights, probabilities, true);

    public static ParzenEstimator Fit(SearchParameter p, IReadOnlyList<JsonNode> values, double priorWeight)
    {
        var observed = values.Select(v => Internal(p, v)).Where(x => !double.IsNaN(x)).ToArray();
        var n = observed.Length;
        double[] weights = n == 0 ? [1.0] : [.. ObservationWeights(n), priorWeight];
        var total = weights.Sum();
        for (var i = 0; i < weights.Length; i++) weights[i] /= total;

        if (p.Kind == ParameterKind.Choice)
        {
            var k = p.Values.Count;
            if (n == 0) return new(weights, [Enumerable.Repeat(1.0 / k, k).ToArray()]);
            var rows = new double[n + 1][];
            for (var i = 0; i <= n; i++)
            {
                rows[i] = Enumerable.Repeat(priorWeight / (n + 1), k).ToArray();
                if (i < n) rows[i][(int)observed[i]] += 1;
                var sum = rows[i].Sum();
                for (var j = 0; j < k; j++) rows[i][j] /= sum;
            }
            return new(weights, rows);
        }

        double step = p.Kind == ParameterKind.Int ? p.Step ?? 1 : 0;
        var (low, high) = p.Kind == ParameterKind.LogUniform
            ? (Math.Log(p.Low!.Value), Math.Log(p.High!.Value))
            : (p.Low!.Value - step / 2, p.High!.Value + step / 2);
        var range = high - low;
        var prior = 0.5 * (low + high);

        var withPrior = observed.Append(prior).ToArray();
        var sorted = Enumerable.Range(0, withPrior.Length).OrderBy(i => withPrior[i]).ToArray();
        var edges = new[] { low }.Concat(sorted.Select(i => withPrior[i])).Append(high).ToArray();
        var m = withPrior.Length;
        var sortedSigmas = new double[m];
        for (var i = 0; i < m; i++) sortedSigmas[i] = Math.Max(edges[i + 1] - edges[i], edges[i + 2] - edges[i + 1]);
        if (m >= 2)
        {
            sortedSigmas[0] = edges[2] - edges[1];
            sortedSigmas[m - 1] = edges[m] - edges[m - 1];
        }
        var sigmas = new double[m];
        for (var i = 0; i < m; i++) sigmas[sorted[i]] = sortedSigmas[i];
        var minSigma = range / Math.Min(100.0, n + 2.0);
        for (var i = 0; i < n; i++) sigmas[i] = Math.Clamp(sigmas[i], minSigma, range);
        sigmas[n] = range;
        return new(weights, withPrior, sigmas, low, high, step);
    }

    /// <summary>Optuna's default_weights: flat up to 25 observations; beyond, the oldest ramp from 1/n to 1.</summary>
    private static IEnumerable<double> ObservationWeights(int n) =>
        n < 25
            ? Enumerable.Repeat(1.0, n)
            : Enumerable.Range(0, n - 25).Select(i => n - 25 == 1 ? 1.0 / n : 1.0 / n + i * (1 - 1.0 / n) / (n - 26)).Concat(Enumerable.Repeat(1.0, 25));

    /// <summary>A draw in the estimator's own coordinates (a choice's index, a log_uniform's logarithm).</summary>
    public double Sample(Random rng)
    {
        var k = Pick(_weights, rng);
        if (_isChoice) return Pick(_probabilities[k], rng);
        var (mu, sigma) = (_mus[k], _sigmas[k]);
        var (a, b) = (Normal.Cdf((_low - mu) / sigma), Normal.Cdf((_high - mu) / sigma));
        var x = Math.Clamp(mu + sigma * Normal.Quantile(a + rng.NextDouble() * (b - a)), _low, _high);
        return _step > 0 ? Snap(x) : x;
    }

    public double LogPdf(double x)
    {
        var terms = new double[_weights.Length];
        for (var k = 0; k < terms.Length; k++)
        {
            if (_isChoice)
            {
                terms[k] = Math.Log(_weights[k] * _probabilities[k][(int)x]);
                continue;
            }
            var (mu, sigma) = (_mus[k], _sigmas[k]);
            var z = Normal.Mass((_low - mu) / sigma, (_high - mu) / sigma);
            terms[k] = Math.Log(_weights[k]) - Math.Log(z) + (_step > 0
                ? Math.Log(Math.Max(Normal.Mass((x - _step / 2 - mu) / sigma, (x + _step / 2 - mu) / sigma), 1e-300))
                : -0.5 * Math.Pow((x - mu) / sigma, 2) - Math.Log(sigma * Math.Sqrt(2 * Math.PI)));
        }
        var max = terms.Max();
        return double.IsNegativeInfinity(max) ? max : max + Math.Log(terms.Sum(t => Math.Exp(t - max)));
    }

    /// <summary>An int's value: the nearest step from low (its range is widened by step/2 each side).</summary>
    private double Snap(double x)
    {
        var (low, high) = (_low + _step / 2, _high - _step / 2);
        return Math.Clamp(low + Math.Round((x - low) / _step) * _step, low, high);
    }

    private static int Pick(double[] probabilities, Random rng)
    {
        var u = rng.NextDouble();
        for (var i = 0; i < probabilities.Length - 1; i++)
            if ((u -= probabilities[i]) < 0) return i;
        return probabilities.Length - 1;
    }

    /// <summary>A trial's value in the estimator's coordinates; NaN for a value the space no longer has.</summary>
    internal static double Internal(SearchParameter p, JsonNode value) => p.Kind switch
    {
        ParameterKind.Choice => p.Values.ToList().FindIndex(v => SearchSpace.SameValue(v, value)) is var i and >= 0 ? i : double.NaN,
        ParameterKind.LogUniform => Math.Log(Math.Clamp(SearchSpace.Number(value), p.Low!.Value, p.High!.Value)),
        _ => Math.Clamp(SearchSpace.Number(value), p.Low!.Value, p.High!.Value),
    };

    internal static JsonNode External(SearchParameter p, double x) => p.Kind switch
    {
        ParameterKind.Choice => p.Values[(int)x].DeepClone(),
        ParameterKind.LogUniform => JsonValue.Create(Math.Clamp(Math.Exp(x), p.Low!.Value, p.High!.Value)),
        ParameterKind.Int => JsonValue.Create((long)Math.Round(x)),
        _ => JsonValue.Create(x),
    };
}

/// <summary>The standard normal distribution: Φ, its quantile, and the mass between two points without cancellation in the tails.</summary>
internal static class Normal
{
    public static double Cdf(double z) => 0.5 * Erfc(-z / Math.Sqrt(2));

    /// <summary>Φ(b) − Φ(a) for a ≤ b, computed from the nearer tail.</summary>
    public static double Mass(double a, double b) =>
        a > 0 ? 0.5 * (Erfc(a / Math.Sqrt(2)) - Erfc(b / Math.Sqrt(2)))
        : b < 0 ? 0.5 * (Erfc(-b / Math.Sqrt(2)) - Erfc(-a / Math.Sqrt(2)))
        : 1 - Cdf(a) - 0.5 * Erfc(b / Math.Sqrt(2));

    /// <summary>The complementary error function, Chebyshev fit (Numerical Recipes, erfcc): relative error below 1.2e-7.</summary>
    private static double Erfc(double x)
    {
        var t = 1 / (1 + 0.5 * Math.Abs(x));
        var r = t * Math.Exp(-x * x - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
            + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
        return x >= 0 ? r : 2 - r;
    }

    /// <summary>Φ⁻¹(p), Acklam's rational approximation (relative error below 1.2e-9); ±∞ at 0 and 1.</summary>
    public static double Quantile(double p)
    {
        if (p <= 0) return double.NegativeInfinity;
        if (p >= 1) return double.PositiveInfinity;
        const double PLow = 0.02425;
        if (p < PLow) return Tail(Math.Sqrt(-2 * Math.Log(p)));
        if (p > 1 - PLow) return -Tail(Math.Sqrt(-2 * Math.Log(1 - p)));
        var q = p - 0.5;
        var r = q * q;
        return (((((-3.969683028665376e+01 * r + 2.209460984245205e+02) * r - 2.759285104469687e+02) * r + 1.383577518672690e+02) * r
                - 3.066479806614716e+01) * r + 2.506628277459239e+00) * q
            / (((((-5.447609879822406e+01 * r + 1.615858368580409e+02) * r - 1.556989798598866e+02) * r + 6.680131188771972e+01) * r
                - 1.328068155288572e+01) * r + 1);

        static double Tail(double q) =>
            (((((-7.784894002430293e-03 * q - 3.223964580411365e-01) * q - 2.400758277161838e+00) * q - 2.549732539343734e+00) * q
                + 4.374664141464968e+00) * q + 2.938163982698783e+00)
            / ((((7.784695709041462e-03 * q + 3.224671290700398e-01) * q + 2.445134137142996e+00) * q + 3.754408661907416e+00) * q + 1);
    }
}
