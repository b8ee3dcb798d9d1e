using Pipeline.Stages.NeuralFit;
using TorchSharp;
using static TorchSharp.torch;

namespace Pipeline.Stages.Tests.NeuralFit;

public sealed class NeuralScoringTests
{
    public NeuralScoringTests() => torch.set_num_threads(1);

    private static int[] Objects(int stimuli, int objects) => [.. Enumerable.Range(0, stimuli).Select(i => i % objects)];

    /// <summary>
    /// Y = Xβ + ε with Var(Xβ) = 1 and Var(ε) = 0.5625 per site: the best linear prediction correlates with a fresh
    /// response at r = 1/√1.5625 = 0.8. With 1,800 training stimuli and 20 features the fit is close to β.
    /// </summary>
    [Theory]
    [InlineData(RegressionKind.Pls)]
    [InlineData(RegressionKind.Ridge)]
    public void Linear_data_with_known_noise_gives_the_theoretical_r(RegressionKind kind)
    {
        using var scope = NewDisposeScope();
        var g = new Generator(5);
        var (n, p, q) = (2000, 20, 16);
        var x = randn([n, p], float64, generator: g);
        var beta = randn([p, q], float64, generator: g) / Math.Sqrt(p);
        var signal = x.matmul(beta);
        signal = signal / signal.std(0);                                      // unit signal variance per site
        var y = signal + (0.75 * randn([n, q], float64, generator: g));

        var result = NeuralScoring.CrossValidated(x, y, Objects(n, 10), new RegressionOptions { Kind = kind, Seed = 3, RidgeAlphas = RegressionOptions.LogGrid(1e-3, 1e3, 7) });

        var (mean, sem) = result.OverSplits();
        Assert.InRange(mean, 0.77, 0.82);
        Assert.InRange(sem, 0, 0.02);
        Assert.Equal(10, result.SplitCount);
        Assert.Equal(q, result.SiteCount);
    }

    /// <summary>
    /// Responses permuted over stimuli are unrelated to the features. With 150 features for 540 training stimuli a
    /// fit that saw its test stimuli would correlate well on them; held-out r must stay at chance. The same data
    /// unshuffled (responses of rank 5 plus noise) scores high, so the fits work.
    /// </summary>
    [Theory]
    [InlineData(RegressionKind.Pls)]
    [InlineData(RegressionKind.Ridge)]
    public void Shuffled_responses_score_zero_so_test_stimuli_do_not_leak_into_the_fit(RegressionKind kind)
    {
        using var scope = NewDisposeScope();
        var g = new Generator(9);
        var (n, p, q) = (600, 150, 32);
        var x = randn([n, p], float64, generator: g);
        var y = x[.., ..5].matmul(randn([5, q], float64, generator: g)) + (0.3 * randn([n, q], float64, generator: g));
        var options = new RegressionOptions { Kind = kind, Seed = 4, RidgeAlphas = RegressionOptions.LogGrid(1e-2, 1e3, 6) };
        var aligned = NeuralScoring.CrossValidated(x, y, Objects(n, 8), options).OverSplits().Mean;
        var shuffled = y.index_select(0, randperm(n, generator: g));

        var (mean, _) = NeuralScoring.CrossValidated(x, shuffled, Objects(n, 8), options).OverSplits();

        Assert.True(aligned > 0.9, $"aligned r {aligned:F3}");
        Assert.InRange(mean, -0.06, 0.06);
    }

    /// <summary>
    /// Per repetition: response = signal (variance s² = 1 across stimuli) + noise (variance n² = 4). The mean of R = 10
    /// repetitions has reliability s² / (s² + n²/R) = 1 / 1.4 ≈ 0.714, which Spearman–Brown recovers from halves of 5.
    /// </summary>
    [Fact]
    public void Split_half_ceiling_recovers_the_reliability_of_synthetic_repetitions()
    {
        using var scope = NewDisposeScope();
        var g = new Generator(2);
        var (reps, stimuli, sites) = (10, 1500, 40);
        var signal = randn([1, stimuli, sites], float64, generator: g);
        var repetitions = signal + (2.0 * randn([reps, stimuli, sites], float64, generator: g));

        var ceiling = NeuralScoring.SplitHalfCeiling(repetitions, halvings: 10, seed: 1);

        Assert.Equal(new long[] { sites }, ceiling.shape);
        Assert.InRange(ceiling.mean().ToDouble(), 0.714 - 0.01, 0.714 + 0.01);
        Assert.True(ceiling.min().ToDouble() > 0.62 && ceiling.max().ToDouble() < 0.80, $"per-site range {ceiling.min().ToDouble():F3}..{ceiling.max().ToDouble():F3}");
        Assert.True(ceiling.Equals(NeuralScoring.SplitHalfCeiling(repetitions, halvings: 10, seed: 1)), "same seed, same ceiling");
    }

    [Fact]
    public void Noise_corrected_score_divides_each_site_by_its_ceiling_before_the_median()
    {
        var r = new double[,] { { 0.4, 0.6, 0.2 }, { 0.5, 0.3, 0.1 } };
        var result = new RegressionResult(RegressionKind.Pls, r, []);

        Assert.Equal(new[] { 0.4, 0.3 }, result.SiteMedians());
        var corrected = result.SiteMedians([0.5, 1.0, 0.25]); // split 0: 0.8, 0.6, 0.8; split 1: 1.0, 0.3, 0.4
        Assert.Equal(0.8, corrected[0], 12);
        Assert.Equal(0.4, corrected[1], 12);
        var (mean, sem) = result.OverSplits([0.5, 1.0, 0.25]);
        Assert.Equal(0.6, mean, 12);
        Assert.Equal(0.2, sem, 12);                                 // SD 0.2828 (n − 1) / √2
        Assert.True(double.IsNaN(result.NoiseCorrected([0.5, 0.0, 1.0])[0, 1]));
    }
}
