using Pipeline.Jobs.Search;
using Xunit.Abstractions;
using static Pipeline.Jobs.Tests.Search.SearchSpaceTests;

namespace Pipeline.Jobs.Tests.Search;

public sealed class SamplerTests(ITestOutputHelper output)
{
    /// <summary>
    /// A synthetic training run in four dimensions plus a conditional one (lower is better, 0 at the optimum): the
    /// optimizer (sgd is best, but only with momentum near 0.9), a log-uniform learning rate best at 10^-2.5, a width
    /// and an int batch size.
    /// </summary>
    private static readonly SearchSpace Space = Parse("""
        {
          "optimizer.kind": { "kind": "choice", "values": ["sgd", "adam", "rmsprop", "adagrad"] },
          "optimizer.momentum": { "kind": "uniform", "low": 0, "high": 1, "when": { "path": "optimizer.kind", "in": ["sgd"] } },
          "optimizer.learning_rate": { "kind": "log_uniform", "low": 1e-6, "high": 1 },
          "model.width": { "kind": "uniform", "low": -5, "high": 5 },
          "train.batch_size": { "kind": "int", "low": 8, "high": 256, "step": 8 }
        }
        """);

    private static double Loss(Assignment a)
    {
        var optimizer = a["optimizer.kind"].GetValue<string>() switch
        {
            "sgd" => 4 * Math.Pow(a.Number("optimizer.momentum") - 0.9, 2),
            "adam" => 0.6,
            "rmsprop" => 1.2,
            _ => 2.0,
        };
        return optimizer
            + 0.5 * Math.Pow(Math.Log10(a.Number("optimizer.learning_rate")) + 2.5, 2)
            + 0.2 * Math.Pow(a.Number("model.width") - 1.3, 2)
            + Math.Pow((a.Number("train.batch_size") - 96) / 64, 2);
    }

    private static List<Trial> Run(ISampler sampler, int trials)
    {
        var history = new List<Trial>();
        for (var i = 0; i < trials; i++)
        {
            var a = sampler.Propose(history, [])!;
            history.Add(new Trial(a, TrialStatus.Completed, Loss(a)));
        }
        return history;
    }

    private static double Median(IEnumerable<double> values)
    {
        var s = values.Order().ToList();
        return s.Count % 2 == 1 ? s[s.Count / 2] : 0.5 * (s[s.Count / 2 - 1] + s[s.Count / 2]);
    }

    [Fact]
    public void Random_and_tpe_give_the_same_proposal_for_the_same_seed_and_history()
    {
        var history = Run(new RandomSampler(Space, seed: 3), 15);
        var running = new[] { history[0].Assignment };

        Assert.Equal(new RandomSampler(Space, 7).Propose(history, running)!.ToString(), new RandomSampler(Space, 7).Propose(history, running)!.ToString());
        Assert.NotEqual(new RandomSampler(Space, 7).Propose(history, running)!.ToString(), new RandomSampler(Space, 8).Propose(history, running)!.ToString());
        var tpe = new TpeSampler(Space, 7, ObjectiveDirection.Minimize);
        Assert.Equal(tpe.Propose(history, running)!.ToString(), new TpeSampler(Space, 7, ObjectiveDirection.Minimize).Propose(history, running)!.ToString());
        Assert.NotEqual(tpe.Propose(history, running)!.ToString(), new TpeSampler(Space, 8, ObjectiveDirection.Minimize).Propose(history, running)!.ToString());
    }

    [Fact]
    public void Proposals_respect_bounds_steps_and_conditions_and_an_inactive_parameter_never_appears()
    {
        foreach (var sampler in new ISampler[] { new RandomSampler(Space, 1), new TpeSampler(Space, 1, ObjectiveDirection.Minimize) })
            foreach (var a in Run(sampler, 60).Select(t => t.Assignment))
            {
                Assert.Equal(a["optimizer.kind"].GetValue<string>() == "sgd", a.ContainsKey("optimizer.momentum"));
                Assert.InRange(a.Number("optimizer.learning_rate"), 1e-6, 1);
                Assert.InRange(a.Number("model.width"), -5, 5);
                var batch = a.Number("train.batch_size");
                Assert.InRange(batch, 8, 256);
                Assert.Equal(0, batch % 8);
                Assert.Equal(a.ContainsKey("optimizer.momentum") ? 5 : 4, a.Count);
            }
    }

    [Fact]
    public void Random_draws_a_log_uniform_in_log_space_and_an_int_uniformly_over_its_steps()
    {
        var space = Parse("""
            { "lr": { "kind": "log_uniform", "low": 1e-6, "high": 1 },
              "n": { "kind": "int", "low": 0, "high": 20, "step": 5 } }
            """);
        var sampler = new RandomSampler(space, 11);
        var history = new List<Trial>();
        for (var i = 0; i < 2000; i++) history.Add(new Trial(sampler.Propose(history, [])!, TrialStatus.Completed, 0));

        // Uniform in log10 over [-6, 0]: half the draws lie below 10^-3 (a linear draw would put 0.1 % there).
        var belowMilli = history.Count(t => t.Assignment.Number("lr") < 1e-3) / 2000.0;
        Assert.InRange(belowMilli, 0.45, 0.55);
        var counts = history.GroupBy(t => t.Assignment.Number("n")).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal([0.0, 5, 10, 15, 20], counts.Keys.Order());
        Assert.All(counts.Values, c => Assert.InRange(c, 320, 480));
    }

    [Fact]
    public void Tpe_beats_random_on_a_synthetic_run_in_the_median_over_seeds()
    {
        var seeds = Enumerable.Range(0, 12).ToList();
        var tpe = seeds.Select(s => Run(new TpeSampler(Space, s, ObjectiveDirection.Minimize), 40).Min(t => t.Objective!.Value)).ToList();
        var random = seeds.Select(s => Run(new RandomSampler(Space, s), 40).Min(t => t.Objective!.Value)).ToList();
        output.WriteLine($"best loss after 40 trials, tpe:    {string.Join(" ", tpe.Select(v => v.ToString("F3")))}; median {Median(tpe):F3}");
        output.WriteLine($"best loss after 40 trials, random: {string.Join(" ", random.Select(v => v.ToString("F3")))}; median {Median(random):F3}");
        output.WriteLine($"seeds where tpe is better: {seeds.Count(i => tpe[i] < random[i])} of {seeds.Count}");

        // Over six other blocks of 12 seeds the ratio of medians was 0.43 to 0.67 (TPE better on 8 to 11 of 12): 0.8 leaves room.
        Assert.True(Median(tpe) < 0.8 * Median(random), $"median best: tpe {Median(tpe):F3}, random {Median(random):F3}");
    }

    [Fact]
    public void Tpe_maximises_when_asked()
    {
        var seeds = Enumerable.Range(0, 6).ToList();
        var best = seeds.Select(s =>
        {
            var sampler = new TpeSampler(Space, s, ObjectiveDirection.Maximize);
            var history = new List<Trial>();
            for (var i = 0; i < 40; i++)
            {
                var a = sampler.Propose(history, [])!;
                history.Add(new Trial(a, TrialStatus.Completed, -Loss(a)));
            }
            return -history.Max(t => t.Objective!.Value);
        });
        var random = seeds.Select(s => Run(new RandomSampler(Space, s), 40).Min(t => t.Objective!.Value));

        Assert.True(Median(best) < Median(random), $"median best loss: tpe maximising −loss {Median(best):F3}, random {Median(random):F3}");
    }

    [Fact]
    public void The_constant_liar_spreads_proposals_made_while_trials_run()
    {
        var history = Run(new RandomSampler(Space, 5), 20);

        string[] Proposals(bool liar)
        {
            var sampler = new TpeSampler(Space, 5, ObjectiveDirection.Minimize, new TpeOptions { ConstantLiar = liar });
            var running = new List<Assignment>();
            for (var i = 0; i < 4; i++) running.Add(sampler.Propose(history, running)!);
            return [.. running.Select(a => a.ToString())];
        }

        Assert.Equal(4, Proposals(liar: true).Distinct().Count());
        // Without the liar the running trials are invisible: the same history gives the same point four times.
        Assert.Single(Proposals(liar: false).Distinct());
    }

    [Fact]
    public void Tpe_proposes_at_random_until_ten_trials_have_finished_and_ignores_failed_ones()
    {
        var history = Run(new RandomSampler(Space, 2), 9);
        history.Add(new Trial(history[0].Assignment, TrialStatus.Failed));

        Assert.Equal(new RandomSampler(Space, 4).Propose(history, [])!.ToString(), new TpeSampler(Space, 4, ObjectiveDirection.Minimize).Propose(history, [])!.ToString());
    }

    [Fact]
    public void A_pruned_trial_counts_towards_the_startup_trials()
    {
        var history = Run(new RandomSampler(Space, 2), 9);
        history.Add(new Trial(history[0].Assignment, TrialStatus.Pruned, Objective: 0.9, Step: 4));

        Assert.NotEqual(new RandomSampler(Space, 4).Propose(history, [])!.ToString(), new TpeSampler(Space, 4, ObjectiveDirection.Minimize).Propose(history, [])!.ToString());
    }

    [Theory]
    [InlineData(1e-12)]
    [InlineData(0.001)]
    [InlineData(0.3)]
    [InlineData(0.5)]
    [InlineData(0.97)]
    [InlineData(1 - 1e-9)]
    public void The_normal_quantile_inverts_the_cdf_in_the_body_and_the_tails(double p) =>
        Assert.Equal(p, Normal.Cdf(Normal.Quantile(p)), p * 1e-5);
}
