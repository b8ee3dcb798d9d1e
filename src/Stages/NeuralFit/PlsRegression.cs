using TorchSharp;
using static TorchSharp.torch;

namespace Pipeline.Stages.NeuralFit;

/// <summary>
/// A fitted PLS2 model, as scikit-learn's <c>PLSRegression</c> attributes with <c>scale=False</c>: the means, X weights
/// (p×K), X loadings (p×K), Y loadings (q×K), X rotations W(PᵀW)⁺ (p×K) and the coefficients (p×q) such that
/// predictions = (X − x̄)·Coef + ȳ. Fitted batched (one model per split), every tensor has a leading batch dimension.
/// Float64, on the device it was fitted on; the model owns (and disposes) its tensors.
/// </summary>
public sealed class PlsModel(Tensor xMean, Tensor yMean, Tensor xWeights, Tensor xLoadings, Tensor yLoadings, Tensor rotations, Tensor coef, int[,] iterations) : IDisposable
{
    public Tensor XMean { get; } = xMean;
    public Tensor YMean { get; } = yMean;
    public Tensor XWeights { get; } = xWeights;
    public Tensor XLoadings { get; } = xLoadings;
    public Tensor YLoadings { get; } = yLoadings;
    public Tensor Rotations { get; } = rotations;
    public Tensor Coef { get; } = coef;

    /// <summary>NIPALS iterations per [batch, component] (scikit-learn's <c>n_iter_</c>); the max means it did not converge.</summary>
    public int[,] Iterations { get; } = iterations;

    /// <summary>(X − x̄)·Coef + ȳ for X [n, p] (or [B, n, p] for a batched model).</summary>
    public Tensor Predict(Tensor x)
    {
        using var scope = NewDisposeScope();
        var centred = x.to(float64, Coef.device) - XMean.unsqueeze(-2);
        return (centred.matmul(Coef) + YMean.unsqueeze(-2)).MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        foreach (var t in new[] { XMean, YMean, XWeights, XLoadings, YLoadings, Rotations, Coef }) t.Dispose();
    }
}

/// <summary>
/// PLS2 regression (Wold's NIPALS in "regression" deflation mode, scikit-learn 1.2.1's <c>PLSRegression</c>,
/// <c>scale=False</c>) computed on second moments instead of data ("kernel PLS", Dayal &amp; MacGregor 1997,
/// J. Chemometrics 11:73): with S = XᵀX and C = XᵀY of the centred, deflated blocks, scikit-learn's power step
/// w ← Xᵀ(Y(Yᵀ(Xw))) is w ← C(Cᵀw), the loadings are Sw/(wᵀSw) and Cᵀw/(wᵀSw), and deflation is
/// S ← S − (wᵀSw)ppᵀ, C ← C − (wᵀSw)pqᵀ. Same initial vector, same stopping rule (squared change of the normalised
/// weights &lt; tol, or max_iter), same sign convention: the iterates equal scikit-learn's up to rounding (1e-14 on
/// test data, identical iteration counts), including when NIPALS stops at max_iter unconverged. Each iteration costs
/// O(p·q) instead of O(n·(p+q)), and many problems (the splits of a cross-validation) run as one batch.
/// </summary>
public static class PlsRegression
{
    /// <summary>Fits X [n, p] → Y [n, q] (both converted to float64 on X's device).</summary>
    public static PlsModel Fit(Tensor x, Tensor y, int components = 25, int maxIterations = 500, double tolerance = 1e-6)
    {
        if (x.dim() != 2 || y.dim() != 2 || x.shape[0] != y.shape[0]) throw new ArgumentException($"X must be [n, p] and Y [n, q] with the same n; got [{string.Join(", ", x.shape)}] and [{string.Join(", ", y.shape)}].");
        if (components > x.shape[1]) throw new ArgumentOutOfRangeException(nameof(components), components, $"at most the number of features ({x.shape[1]}), as scikit-learn");
        using var scope = NewDisposeScope();
        var xs = x.to(float64);
        var ys = y.to(float64, xs.device);
        var (xMean, yMean) = (xs.mean([0]), ys.mean([0]));
        var (xc, yc) = (xs - xMean, ys - yMean);
        var fit = FitMoments(xc.T.matmul(xc).unsqueeze(0), xc.T.matmul(yc).unsqueeze(0), yc.square().sum(dim: 0).unsqueeze(0), x.shape[0], components, maxIterations, tolerance);
        var model = new PlsModel(xMean, yMean, fit.XWeights[0], fit.XLoadings[0], fit.YLoadings[0], fit.Rotations[0], fit.Coef[0], fit.Iterations);
        foreach (var t in new[] { model.XMean, model.YMean, model.XWeights, model.XLoadings, model.YLoadings, model.Rotations, model.Coef }) t.MoveToOuterDisposeScope();
        return model;
    }

    /// <summary>The batched fit's outputs: [B, p, K], [B, p, K], [B, q, K], [B, p, K], [B, p, q], iterations [B, K].</summary>
    internal sealed record MomentFit(Tensor XWeights, Tensor XLoadings, Tensor YLoadings, Tensor Rotations, Tensor Coef, int[,] Iterations);

    /// <summary>
    /// NIPALS on centred second moments, batched: <paramref name="xx"/> = XcᵀXc [B, p, p], <paramref name="xy"/> = XcᵀYc
    /// [B, p, q], <paramref name="yy"/> = column sums of Yc² [B, q] (only to find the first non-constant target, where
    /// scikit-learn starts the power iteration; it deems a column constant when all |y| &lt; 10·eps, here when its sum of
    /// squares is below n·(10·eps)²). The inputs are not modified. Outputs are created in the caller's dispose scope.
    /// </summary>
    internal static MomentFit FitMoments(Tensor xx, Tensor xy, Tensor yy, long samples, int components, int maxIterations, double tolerance)
    {
        var (batch, p, q) = (xy.shape[0], xy.shape[1], xy.shape[2]);
        var iterations = new int[batch, components];
        var eps = Math.BitIncrement(1.0) - 1.0;
        Tensor weights, xLoadings, yLoadings, rotations, coef;
        using (var outer = NewDisposeScope())
        {
            var s = xx.clone();
            var c = xy.clone();
            var ySquares = yy.clone();
            var (ws, ps, qs) = (new List<Tensor>(), new List<Tensor>(), new List<Tensor>());
            var constantBelow = samples * Math.Pow(10 * eps, 2);
            for (var k = 0; k < components; k++)
            {
                using var step = NewDisposeScope();
                var live = ySquares > constantBelow;                     // [B, q]
                var alive = live.any(-1);                                // [B]: some target is not yet constant
                var first = live.to(int32).argmax(-1);                   // first live column (the first maximum)
                var w = c.gather(2, first.view(batch, 1, 1).expand(batch, p, 1)).squeeze(-1);
                w = Normalise(w, eps);
                var active = alive.clone();
                if (q == 1) active.fill_(false);                          // scikit-learn stops after one step for one target
                var count = alive.to(int32);                             // iteration 0 has been done
                var old = w;
                for (var i = 1; i < maxIterations; i++)
                {
                    if (!active.any().ToBoolean()) break;
                    using var it = NewDisposeScope();
                    var u = c.transpose(1, 2).matmul(w.unsqueeze(-1));   // ∝ Y weights
                    var next = Normalise(c.matmul(u).squeeze(-1), eps);
                    var moved = where(active.unsqueeze(-1), next, w);
                    var converged = (moved - old).square().sum(-1) < tolerance;
                    count.add_(active.to(int32));
                    active.logical_and_(converged.logical_not());
                    w = moved.MoveToOuterDisposeScope();
                    old = w;
                }

                // scikit-learn's _svd_flip_1d: the largest |weight| is positive.
                var sign = w.gather(-1, w.abs().argmax(-1, keepdim: true)).sign();
                w = (w * sign).mul(alive.unsqueeze(-1));
                var sw = s.matmul(w.unsqueeze(-1)).squeeze(-1);          // XkᵀXk w = Xkᵀ t
                var tt = (w * sw).sum(-1);                               // tᵀt
                var safe = where(alive, tt, ones_like(tt));
                var pLoad = sw / safe.unsqueeze(-1);
                var qLoad = c.transpose(1, 2).matmul(w.unsqueeze(-1)).squeeze(-1) / safe.unsqueeze(-1);
                s.sub_(pLoad.unsqueeze(-1).matmul(pLoad.unsqueeze(-2)) * tt.view(batch, 1, 1));
                c.sub_(pLoad.unsqueeze(-1).matmul(qLoad.unsqueeze(-2)) * tt.view(batch, 1, 1));
                ySquares.sub_(qLoad.square() * tt.unsqueeze(-1));
                foreach (var t in new[] { w, pLoad, qLoad }) t.MoveToOuterDisposeScope();
                ws.Add(w);
                ps.Add(pLoad);
                qs.Add(qLoad);
                var counts = count.cpu().data<int>().ToArray();
                for (var b = 0; b < batch; b++) iterations[b, k] = counts[b];
            }

            weights = stack(ws, -1);
            xLoadings = stack(ps, -1);
            yLoadings = stack(qs, -1);
            // scikit-learn: x_rotations_ = W pinv(PᵀW) (scipy's pinv, same default cut-off as torch's).
            rotations = weights.matmul(linalg.pinv(xLoadings.transpose(1, 2).matmul(weights)));
            coef = rotations.matmul(yLoadings.transpose(1, 2));
            foreach (var t in new[] { weights, xLoadings, yLoadings, rotations, coef }) t.MoveToOuterDisposeScope();
        }
        return new MomentFit(weights, xLoadings, yLoadings, rotations, coef, iterations);
    }

    /// <summary>w / (‖w‖ + eps), as scikit-learn (the eps keeps an all-zero vector at zero).</summary>
    private static Tensor Normalise(Tensor w, double eps) => w / (w.square().sum(-1, keepdim: true).sqrt() + eps);
}
