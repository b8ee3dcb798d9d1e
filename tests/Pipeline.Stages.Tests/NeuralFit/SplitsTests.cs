using Pipeline.Stages.NeuralFit;

namespace Pipeline.Stages.Tests.NeuralFit;

public sealed class SplitsTests
{
    // HvM-like: 8 objects of unequal size (90 and 45 stimuli), not sorted by object.
    private static readonly int[] Labels = [.. Enumerable.Range(0, 540).Select(i => i * 7 % 540).Select(i => i < 360 ? i / 90 : 4 + ((i - 360) / 45))];

    [Fact]
    public void Test_sets_are_stratified_by_object_disjoint_from_train_and_together_cover_all_stimuli()
    {
        var splits = Splits.Stratified(Labels, splits: 10, testFraction: 0.1, seed: 7);

        Assert.Equal(10, splits.Count);
        foreach (var (train, test) in splits)
        {
            Assert.Equal(54, test.Length);
            Assert.Empty(train.Intersect(test));
            Assert.Equal(Enumerable.Range(0, Labels.Length), train.Concat(test).Order());
            Assert.Equal(train.Order(), train);
            foreach (var group in Labels.Select((label, i) => (label, i)).GroupBy(t => t.label))
            {
                var inTest = test.Count(i => Labels[i] == group.Key);
                var exact = 0.1 * group.Count();
                Assert.InRange(inTest, Math.Floor(exact), Math.Ceiling(exact));
            }
        }
        Assert.True(splits.Select(s => string.Join(',', s.Test)).Distinct().Count() == 10, "each split draws a new test set");
    }

    [Fact]
    public void Splits_are_the_same_for_the_same_seed_and_differ_for_another()
    {
        var a = Splits.Stratified(Labels, 10, 0.1, seed: 11);
        var b = Splits.Stratified(Labels, 10, 0.1, seed: 11);
        var c = Splits.Stratified(Labels, 10, 0.1, seed: 12);

        Assert.Equal(a.Select(s => s.Test), b.Select(s => s.Test));
        Assert.NotEqual(a.Select(s => s.Test), c.Select(s => s.Test));
    }

    [Fact]
    public void Inner_folds_spread_every_object_evenly()
    {
        var folds = Splits.StratifiedFolds(Labels, folds: 5, seed: 3);

        Assert.All(Enumerable.Range(0, 5), f => Assert.InRange(folds.Count(x => x == f), 107, 109));
        foreach (var group in Labels.Select((label, i) => (label, i)).GroupBy(t => t.label))
        {
            var perFold = Enumerable.Range(0, 5).Select(f => group.Count(t => folds[t.i] == f)).ToArray();
            Assert.True(perFold.Max() - perFold.Min() <= 1, $"object {group.Key}: {string.Join(',', perFold)}");
        }
    }
}
