namespace Pipeline.Stages.NeuralFit;

/// <summary>
/// Train/test splits stratified by object, as Brain-Score's (scikit-learn StratifiedShuffleSplit): every object's
/// stimuli are spread over train and test in proportion, so a test set never holds an object the fit has not seen.
/// The stream is this project's own (<see cref="SplitRandom"/>), so the indices differ from scikit-learn's for the
/// same seed; the allocation rule is the same.
/// </summary>
public static class Splits
{
    private const int SplitPurpose = 1;
    private const int FoldPurpose = 2;

    /// <summary>
    /// <paramref name="splits"/> independent shuffles. Each test set has ceil(testFraction·n) stimuli; object c gets
    /// floor(nTest·n_c/n) of them, and the remainder goes to the objects with the largest fractional parts (ties in a
    /// seeded order). Train and test are disjoint, cover all stimuli and are sorted ascending.
    /// </summary>
    public static IReadOnlyList<(int[] Train, int[] Test)> Stratified(IReadOnlyList<int> objectLabels, int splits, double testFraction, long seed)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(splits, 1);
        if (!(testFraction > 0 && testFraction < 1)) throw new ArgumentOutOfRangeException(nameof(testFraction), testFraction, "must be in (0, 1)");
        var n = objectLabels.Count;
        ArgumentOutOfRangeException.ThrowIfLessThan(n, 2, nameof(objectLabels));
        var nTest = Math.Clamp((int)Math.Ceiling(testFraction * n), 1, n - 1);
        var classes = ByClass(objectLabels);

        var result = new List<(int[], int[])>(splits);
        for (var s = 0; s < splits; s++)
        {
            var rng = SplitRandom.For(seed, SplitPurpose, s);
            var quota = Allocate(classes.Select(c => c.Length).ToArray(), n, nTest, rng);
            var isTest = new bool[n];
            for (var c = 0; c < classes.Length; c++)
            {
                var members = (int[])classes[c].Clone();
                rng.Shuffle(members);
                for (var i = 0; i < quota[c]; i++) isTest[members[i]] = true;
            }
            result.Add(([.. Enumerable.Range(0, n).Where(i => !isTest[i])], [.. Enumerable.Range(0, n).Where(i => isTest[i])]));
        }
        return result;
    }

    /// <summary>
    /// Assigns each of <paramref name="objectLabels"/>' positions to one of <paramref name="folds"/> folds, each object's
    /// stimuli dealt round-robin (in a seeded order) so that every fold gets its share of every object.
    /// </summary>
    public static int[] StratifiedFolds(IReadOnlyList<int> objectLabels, int folds, long seed)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(folds, 2);
        ArgumentOutOfRangeException.ThrowIfLessThan(objectLabels.Count, folds, nameof(objectLabels));
        var rng = SplitRandom.For(seed, FoldPurpose, 0);
        var fold = new int[objectLabels.Count];
        var next = 0; // continues across objects so that fold sizes differ by at most one
        foreach (var members in ByClass(objectLabels))
        {
            var order = (int[])members.Clone();
            rng.Shuffle(order);
            foreach (var i in order) fold[i] = next++ % folds;
        }
        return fold;
    }

    private static int[][] ByClass(IReadOnlyList<int> labels) =>
        [.. Enumerable.Range(0, labels.Count).GroupBy(i => labels[i]).OrderBy(g => g.Key).Select(g => g.ToArray())];

    /// <summary>Largest-remainder allocation of <paramref name="total"/> test stimuli over classes of the given sizes.</summary>
    private static int[] Allocate(int[] sizes, int n, int total, SplitRandom rng)
    {
        var exact = sizes.Select(size => (double)total * size / n).ToArray();
        var quota = exact.Select(e => (int)Math.Floor(e)).ToArray();
        var tieBreak = Enumerable.Range(0, sizes.Length).ToArray();
        rng.Shuffle(tieBreak);
        var rank = new int[sizes.Length];
        for (var i = 0; i < tieBreak.Length; i++) rank[tieBreak[i]] = i;
        var byRemainder = Enumerable.Range(0, sizes.Length)
            .Where(c => quota[c] < sizes[c])
            .OrderByDescending(c => Math.Round(exact[c] - quota[c], 12))
            .ThenBy(c => rank[c]);
        var left = total - quota.Sum();
        foreach (var c in byRemainder)
        {
            if (left == 0) break;
            quota[c]++;
            left--;
        }
        return quota;
    }
}
