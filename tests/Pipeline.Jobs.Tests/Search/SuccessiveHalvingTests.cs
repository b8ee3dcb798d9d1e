using Pipeline.Jobs.Search;

namespace Pipeline.Jobs.Tests.Search;

public sealed class SuccessiveHalvingTests
{
    private static readonly SuccessiveHalving Asha = new() { MinSteps = 1, MaxSteps = 100 };

    [Fact]
    public void Rungs_sit_at_min_steps_times_powers_of_eta_below_max_steps()
    {
        Assert.Equal([1, 4, 16, 64], Asha.Rungs());
        Assert.Equal([10, 30, 90, 270, 810], new SuccessiveHalving { MinSteps = 10, MaxSteps = 1000, ReductionFactor = 3 }.Rungs());
        Assert.Equal(2, Asha.RungAt(16));
        Assert.Null(Asha.RungAt(5));
        Assert.Null(Asha.RungAt(100));
    }

    [Fact]
    public void The_first_trial_at_a_rung_continues_and_the_next_ones_must_be_best_until_eta_have_reported()
    {
        Assert.True(Asha.ShouldContinue([], 0.1, ObjectiveDirection.Maximize));
        Assert.False(Asha.ShouldContinue([0.5], 0.4, ObjectiveDirection.Maximize));
        Assert.True(Asha.ShouldContinue([0.5], 0.5, ObjectiveDirection.Maximize));
        Assert.True(Asha.ShouldContinue([0.5, 0.2], 0.6, ObjectiveDirection.Maximize));
    }

    [Fact]
    public void A_value_in_the_top_quarter_of_the_rung_continues_and_one_below_it_is_pruned()
    {
        double[] accuracies = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7];

        // Eight values with itself: the top ⌊8/4⌋ = 2 continue.
        Assert.True(Asha.ShouldContinue(accuracies, 0.65, ObjectiveDirection.Maximize));
        Assert.False(Asha.ShouldContinue(accuracies, 0.55, ObjectiveDirection.Maximize));
    }

    [Fact]
    public void Minimising_keeps_the_lowest_values()
    {
        double[] losses = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7];

        Assert.True(Asha.ShouldContinue(losses, 0.15, ObjectiveDirection.Minimize));
        Assert.False(Asha.ShouldContinue(losses, 0.25, ObjectiveDirection.Minimize));
        Assert.False(Asha.ShouldContinue(losses, 0.65, ObjectiveDirection.Minimize));
    }

    [Fact]
    public void A_diverged_trial_is_pruned_and_earlier_diverged_values_do_not_compete()
    {
        Assert.False(Asha.ShouldContinue([], double.NaN, ObjectiveDirection.Maximize));
        Assert.True(Asha.ShouldContinue([double.NaN, double.NaN, double.NaN], 0.1, ObjectiveDirection.Maximize));
    }

    [Theory]
    [InlineData(0, 10, 4, "min_steps")]
    [InlineData(10, 10, 4, "max_steps")]
    [InlineData(1, 10, 1, "reduction_factor")]
    public void Bad_settings_name_their_field(int minSteps, int maxSteps, int eta, string field) =>
        Assert.Contains(new SuccessiveHalving { MinSteps = minSteps, MaxSteps = maxSteps, ReductionFactor = eta }.Validate(), e => e.Field == field);
}
