using Pipeline.Stages.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Pipeline.Stages.NeuralFit;

/// <summary>
/// A fitted ridge model: predictions = (X − x̄)·Coef + ȳ, Coef [p, q], with the penalty each site was fitted with.
/// Float64 on the fitting device; owns its tensors.
/// </summary>
public sealed class RidgeModel(Tensor xMean, Tensor yMean, Tensor coef, double[] alphas) : IDisposable
{
    public Tensor XMean { get; } = xMean;
    public Tensor YMean { get; } = yMean;
    public Tensor Coef { get; } = coef;

    /// <summary>The penalty of each site (column of Y).</summary>
    public IReadOnlyList<double> Alphas { get; } = alphas;

    public Tensor Predict(Tensor x)
    {
        using var scope = NewDisposeScope();
        return HeldScalars.Add((x.to(float64, Coef.device) - XMean).matmul(Coef), YMean).MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        XMean.Dispose();
        YMean.Dispose();
        Coef.Dispose();
    }
}

/// <summary>
/// Ridge regression with an intercept (scikit-learn's <c>Ridge(alpha, fit_intercept=True)</c>: the intercept is not
/// penalised, so X and Y are centred), in closed form through the eigendecomposition of the centred Gram matrix —
/// XcᵀXc (p×p) when p ≤ n, the kernel XcXcᵀ (n×n) when p &gt; n — so that every penalty costs one small product:
/// Coef(α) = V·diag(1/(λ+α))·VᵀXcᵀYc, with V the right singular vectors and λ the squared singular values of Xc.
/// </summary>
public static class RidgeRegression
{
    /// <summary>One penalty for all sites.</summary>
    public static RidgeModel Fit(Tensor x, Tensor y, double alpha) => Fit(x, y, Enumerable.Repeat(alpha, (int)y.shape[1]).ToArray());

    /// <summary>One penalty per site (scikit-learn's <c>Ridge(alpha=array)</c>).</summary>
    public static RidgeModel Fit(Tensor x, Tensor y, IReadOnlyList<double> alphaPerSite)
    {
        CheckShapes(x, y);
        if (alphaPerSite.Count != y.shape[1]) throw new ArgumentException($"{alphaPerSite.Count} penalties for {y.shape[1]} sites.", nameof(alphaPerSite));
        using var scope = NewDisposeScope();
        var xs = x.to(float64);
        var ys = y.to(float64, xs.device);
        var (xMean, yMean) = (xs.mean([0]), ys.mean([0]));
        using var spectrum = Spectrum.Of(xs - xMean, ys - yMean);
        var coef = spectrum.Coef(tensor(alphaPerSite.ToArray(), float64, xs.device));
        var model = new RidgeModel(xMean.MoveToOuterDisposeScope(), yMean.MoveToOuterDisposeScope(), coef.MoveToOuterDisposeScope(), [.. alphaPerSite]);
        return model;
    }

    /// <summary>
    /// Chooses each site's penalty from <paramref name="alphas"/> by <paramref name="folds"/>-fold cross-validation on
    /// (X, Y) alone — folds stratified by object, the penalty with the least summed squared error over the validation
    /// folds (scikit-learn RidgeCV's criterion with <c>alpha_per_target=True</c>; ties go to the smaller penalty) —
    /// then refits on all of (X, Y) with those penalties.
    /// </summary>
    public static RidgeModel FitCrossValidated(Tensor x, Tensor y, IReadOnlyList<int> objectLabels, IReadOnlyList<double> alphas, int folds, long seed)
    {
        CheckShapes(x, y);
        if (objectLabels.Count != x.shape[0]) throw new ArgumentException($"{objectLabels.Count} labels for {x.shape[0]} stimuli.", nameof(objectLabels));
        double[] chosen;
        using (var moments = SecondMoments.Of(x, y, x.device))
            chosen = ChooseAlphas(moments, [], [.. Enumerable.Range(0, (int)x.shape[0])], objectLabels, alphas, folds, seed);
        return Fit(x, y, chosen);
    }

    /// <summary>
    /// Per site, the penalty with the least inner cross-validated squared error, using only <paramref name="trainRows"/>
    /// of <paramref name="moments"/> (<paramref name="heldOut"/> are the outer test rows, never seen here);
    /// <paramref name="trainLabels"/> are the objects of <paramref name="trainRows"/>.
    /// </summary>
    internal static double[] ChooseAlphas(SecondMoments moments, long[] heldOut, int[] trainRows, IReadOnlyList<int> trainLabels, IReadOnlyList<double> alphas, int folds, long seed)
    {
        var sorted = alphas.Order().ToArray();
        using var scope = NewDisposeScope();
        var device = moments.X.device;
        var grid = tensor(sorted, float64, device).view(-1, 1, 1);                      // [A, 1, 1]
        var error = zeros([sorted.Length, moments.Y.shape[1]], float64, device: device); // [A, q]
        var fold = Splits.StratifiedFolds(trainLabels, folds, seed);
        for (var f = 0; f < folds; f++)
        {
            using var inner = NewDisposeScope();
            var valid = trainRows.Where((_, i) => fold[i] == f).Select(i => (long)i).ToArray();
            var (spectrum, xMean, yMean) = Train(moments, [.. heldOut, .. valid]);
            using (spectrum)
            {
                var rows = tensor(valid, device: device);
                var projected = (moments.X.index_select(0, rows) - xMean).matmul(spectrum.V);   // [nv, r]
                var shrunk = spectrum.VtXtY / HeldScalars.Add(spectrum.Lambda.view(1, -1, 1), grid);         // [A, r, q]
                var residual = (moments.Y.index_select(0, rows) - yMean).unsqueeze(0) - projected.unsqueeze(0).matmul(shrunk);
                HeldScalars.AddInPlace(error, residual.square().sum(1));
            }
        }
        var best = error.argmin(dim: 0).cpu().data<long>().ToArray();
        return [.. best.Select(i => sorted[i])];
    }

    /// <summary>
    /// The spectrum of all rows but <paramref name="excluded"/>, and their means in the shifted units of
    /// <paramref name="moments"/>: from the subtracted moments when p ≤ n, from the rows themselves (kernel) otherwise.
    /// </summary>
    internal static (Spectrum Spectrum, Tensor XMean, Tensor YMean) Train(SecondMoments moments, long[] excluded)
    {
        var (p, count) = (moments.X.shape[1], moments.Count - excluded.Length);
        if (p <= count)
        {
            var (s, c, _, xMean, yMean, _) = moments.Without(excluded);
            return (Spectrum.FromMoments(s, c, count), xMean - moments.XShift, yMean - moments.YShift);
        }
        var drop = excluded.ToHashSet();
        var rows = tensor(Enumerable.Range(0, (int)moments.Count).Select(i => (long)i).Where(i => !drop.Contains(i)).ToArray(), device: moments.X.device);
        var (xt, yt) = (moments.X.index_select(0, rows), moments.Y.index_select(0, rows));
        var (xm, ym) = (xt.mean([0]), yt.mean([0]));
        return (Spectrum.Of(xt - xm, yt - ym), xm, ym);
    }

    private static void CheckShapes(Tensor x, Tensor y)
    {
        if (x.dim() != 2 || y.dim() != 2 || x.shape[0] != y.shape[0]) throw new ArgumentException($"X must be [n, p] and Y [n, q] with the same n; got [{string.Join(", ", x.shape)}] and [{string.Join(", ", y.shape)}].");
    }

    /// <summary>
    /// Xc = U·diag(√λ)·Vᵀ restricted to λ &gt; 0 (eigenvalues below p·eps·λmax are dropped: they are rounding noise of
    /// a rank-deficient Xc, and their directions carry no part of XcᵀYc). VtXtY = VᵀXcᵀYc [r, q].
    /// </summary>
    internal sealed class Spectrum : IDisposable
    {
        public required Tensor V { get; init; }
        public required Tensor Lambda { get; init; }
        public required Tensor VtXtY { get; init; }

        public static Spectrum Of(Tensor xc, Tensor yc)
        {
            var (n, p) = (xc.shape[0], xc.shape[1]);
            if (p <= n) return FromMoments(xc.T.matmul(xc), xc.T.matmul(yc), n);

            // Kernel side: XcXcᵀ = UΛUᵀ, V = XcᵀUΛ^(-1/2), VᵀXcᵀYc = Λ^(1/2)UᵀYc; Λ = 0 directions are dropped first
            // (they would divide by zero, and XcᵀU is zero there).
            using var scope = NewDisposeScope();
            var (l, u) = linalg.eigh(xc.matmul(xc.T));
            var nonzero = l > HeldScalars.Times(l.max(), p * (Math.BitIncrement(1.0) - 1.0));
            var columns = nonzero.nonzero().squeeze(-1);
            var (lambda, basis) = (l.index_select(0, columns), u.index_select(1, columns));
            var v = xc.T.matmul(basis) / lambda.sqrt();
            var vtxty = lambda.sqrt().unsqueeze(-1) * basis.T.matmul(yc);
            return Keep(v, lambda, vtxty, p);
        }

        /// <summary>Primal side, from S = XcᵀXc [p, p] and C = XcᵀYc [p, q] of <paramref name="samples"/> rows.</summary>
        public static Spectrum FromMoments(Tensor s, Tensor c, long samples)
        {
            using var scope = NewDisposeScope();
            var (lambda, v) = linalg.eigh(s);
            return Keep(v, lambda, v.T.matmul(c), Math.Max(samples, s.shape[0]));
        }

        private static Spectrum Keep(Tensor v, Tensor lambda, Tensor vtxty, long size)
        {
            var keep = (lambda > HeldScalars.Times(lambda.max(), size * (Math.BitIncrement(1.0) - 1.0))).nonzero().squeeze(-1);
            return new Spectrum
            {
                V = v.index_select(1, keep).MoveToOuterDisposeScope(),
                Lambda = lambda.index_select(0, keep).MoveToOuterDisposeScope(),
                VtXtY = vtxty.index_select(0, keep).MoveToOuterDisposeScope(),
            };
        }

        /// <summary>Coef [p, q] for one penalty per site ([q]).</summary>
        public Tensor Coef(Tensor alphaPerSite) => V.matmul(VtXtY / HeldScalars.Add(Lambda.unsqueeze(-1), alphaPerSite.unsqueeze(0)));

        public void Dispose()
        {
            V.Dispose();
            Lambda.Dispose();
            VtXtY.Dispose();
        }
    }
}
