using Pipeline.Stages.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Pipeline.Stages.NeuralFit;

/// <summary>
/// Brain-Score's neural predictivity for one (area, time bin, layer): cross-validated regression of site responses on
/// model features, per-site Pearson r on held-out stimuli, and the split-half noise ceiling of the responses.
/// Tensors in, numbers out; no I/O.
/// </summary>
public static class NeuralScoring
{
    /// <summary>
    /// Fits <paramref name="features"/> [stimuli, D] → <paramref name="responses"/> [stimuli, sites] (averaged over
    /// repetitions) on each stratified split's training stimuli and correlates predictions with the held-out responses,
    /// per site. PLS fits every split of a batch at once from subtracted second moments (see
    /// <see cref="PlsRegression"/>); ridge chooses each site's penalty by inner CV on the training stimuli only.
    /// </summary>
    public static RegressionResult CrossValidated(Tensor features, Tensor responses, IReadOnlyList<int> objectLabels, RegressionOptions options)
    {
        options.Validate();
        if (features.dim() != 2 || responses.dim() != 2 || features.shape[0] != responses.shape[0])
            throw new ArgumentException($"features must be [stimuli, D] and responses [stimuli, sites] with the same stimuli; got [{string.Join(", ", features.shape)}] and [{string.Join(", ", responses.shape)}].");
        if (objectLabels.Count != features.shape[0]) throw new ArgumentException($"{objectLabels.Count} object labels for {features.shape[0]} stimuli.", nameof(objectLabels));

        var splits = Splits.Stratified(objectLabels, options.Splits, options.TestFraction, options.Seed);
        var device = ComputeDevice.Resolve(options.Device);
        using var moments = SecondMoments.Of(features, responses, device);
        return options.Kind == RegressionKind.Pls
            ? CrossValidatedPls(moments, splits, options)
            : CrossValidatedRidge(moments, splits, objectLabels, options);
    }

    private static RegressionResult CrossValidatedPls(SecondMoments moments, IReadOnlyList<(int[] Train, int[] Test)> splits, RegressionOptions o)
    {
        var (p, q) = (moments.X.shape[1], moments.Y.shape[1]);
        var components = (int)Math.Min(o.PlsComponents, p);
        var r = new double[splits.Count, q];
        var iterations = new int[splits.Count, components];
        // S and C of each split, plus the fit's working copies of them.
        var perSplit = 8L * 2 * ((p * p) + (p * q));
        var batch = (int)Math.Clamp(o.BatchBytes / perSplit, 1, splits.Count);
        for (var first = 0; first < splits.Count; first += batch)
        {
            using var scope = NewDisposeScope();
            var chunk = Enumerable.Range(first, Math.Min(batch, splits.Count - first)).ToArray();
            var parts = chunk.Select(s => moments.Without([.. splits[s].Test.Select(i => (long)i)])).ToArray();
            var fit = PlsRegression.FitMoments(
                stack(parts.Select(m => m.S)), stack(parts.Select(m => m.C)), stack(parts.Select(m => m.YSquares)),
                parts.Max(m => m.Count), components, o.PlsMaxIterations, o.PlsTolerance);
            for (var b = 0; b < chunk.Length; b++)
            {
                var test = tensor(splits[chunk[b]].Test.Select(i => (long)i).ToArray(), device: moments.X.device);
                // Predictions in the shifted units of the moments (a constant shift does not change r).
                var xMean = parts[b].XMean - moments.XShift;
                var yMean = parts[b].YMean - moments.YShift;
                var predicted = HeldScalars.Add((moments.X.index_select(0, test) - xMean).matmul(fit.Coef[b]), yMean);
                CopyRow(PearsonPerSite(predicted, moments.Y.index_select(0, test)), r, chunk[b]);
                for (var k = 0; k < components; k++) iterations[chunk[b], k] = fit.Iterations[b, k];
            }
        }
        return new RegressionResult(RegressionKind.Pls, r, splits) { PlsIterations = iterations };
    }

    private static RegressionResult CrossValidatedRidge(SecondMoments moments, IReadOnlyList<(int[] Train, int[] Test)> splits, IReadOnlyList<int> labels, RegressionOptions o)
    {
        var q = moments.Y.shape[1];
        var r = new double[splits.Count, q];
        var alphas = new double[splits.Count, q];
        for (var s = 0; s < splits.Count; s++)
        {
            using var scope = NewDisposeScope();
            var (train, testRows) = splits[s];
            var heldOut = testRows.Select(i => (long)i).ToArray();
            // A distinct inner-fold stream per split, so that the folds are not the same partition of every training set.
            var chosen = RidgeRegression.ChooseAlphas(moments, heldOut, train, [.. train.Select(i => labels[i])], o.RidgeAlphas, o.InnerFolds, o.Seed + (7919L * (s + 1)));
            var (spectrum, xMean, yMean) = RidgeRegression.Train(moments, heldOut);
            using (spectrum)
            {
                var coef = spectrum.Coef(tensor(chosen, float64, moments.X.device));
                var test = tensor(heldOut, device: moments.X.device);
                var predicted = HeldScalars.Add((moments.X.index_select(0, test) - xMean).matmul(coef), yMean);
                CopyRow(PearsonPerSite(predicted, moments.Y.index_select(0, test)), r, s);
            }
            for (var i = 0; i < q; i++) alphas[s, i] = chosen[i];
        }
        return new RegressionResult(RegressionKind.Ridge, r, splits) { RidgeAlphas = alphas };
    }

    /// <summary>
    /// Per-site split-half reliability of <paramref name="repetitions"/> [reps, stimuli, sites]: for each of
    /// <paramref name="halvings"/> seeded random halvings of the repetitions, the Pearson r across stimuli between the
    /// two halves' means, Spearman–Brown corrected to the full set (2r/(1+r)); the mean over halvings. Both halves
    /// hold ⌊reps/2⌋ repetitions (with an odd count one repetition sits out of each halving, a different one each time),
    /// so the estimate is the reliability of the mean of 2⌊reps/2⌋ repetitions. Returns float64 [sites] on the CPU.
    /// </summary>
    public static Tensor SplitHalfCeiling(Tensor repetitions, int halvings, long seed)
    {
        if (repetitions.dim() != 3 || repetitions.shape[0] < 2) throw new ArgumentException($"repetitions must be [reps ≥ 2, stimuli, sites]; got [{string.Join(", ", repetitions.shape)}].", nameof(repetitions));
        ArgumentOutOfRangeException.ThrowIfLessThan(halvings, 1);
        const int HalvingPurpose = 3;
        var reps = (int)repetitions.shape[0];
        var half = reps / 2;
        using var scope = NewDisposeScope();
        var data = repetitions.to(float64);
        var total = zeros(repetitions.shape[2], float64, device: data.device);
        for (var h = 0; h < halvings; h++)
        {
            using var step = NewDisposeScope();
            var order = Enumerable.Range(0, reps).Select(i => (long)i).ToArray();
            SplitRandom.For(seed, HalvingPurpose, h).Shuffle(order);
            var a = data.index_select(0, tensor(order[..half], device: data.device)).mean([0]);
            var b = data.index_select(0, tensor(order[half..(2 * half)], device: data.device)).mean([0]);
            var r = PearsonPerSiteTensor(a, b);
            HeldScalars.AddInPlace(total, HeldScalars.Times(r, 2).div(HeldScalars.Plus(r, 1.0)));
        }
        return HeldScalars.DividedBy(total, halvings).cpu().MoveToOuterDisposeScope();
    }

    /// <summary>Spearman–Brown prediction of the reliability of k times as many repetitions: k·r / (1 + (k−1)·r).</summary>
    public static double SpearmanBrown(double r, double k = 2) => k * r / (1 + ((k - 1) * r));

    /// <summary>Pearson r per column of two [n, q] tensors (NaN for a constant column).</summary>
    public static double[] PearsonPerSite(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        return PearsonPerSiteTensor(a.to(float64), b.to(float64)).cpu().data<double>().ToArray();
    }

    private static Tensor PearsonPerSiteTensor(Tensor a, Tensor b)
    {
        var (ac, bc) = (a - a.mean([0]), b - b.mean([0]));
        return (ac * bc).sum(dim: 0) / (ac.square().sum(dim: 0) * bc.square().sum(dim: 0)).sqrt();
    }

    private static void CopyRow(double[] values, double[,] into, int row)
    {
        for (var i = 0; i < values.Length; i++) into[row, i] = values[i];
    }
}
