using Pipeline.Stages.Models;
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
        return HeldScalars.Add(centred.matmul(Coef), YMean.unsqueeze(-2)).MoveToOuterDisposeScope();
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
/// test data, identical iteration counts), including when NIPALS stops at max_iter unconverged. The power iteration
/// itself is evaluated in closed form in an eigenbasis (no loop over iterations), the deflated moments are never
/// formed, and many problems (the splits of a cross-validation) run as one batch. The moments square X's condition
/// number: fine in float64 for features like a network layer's, not checked on near-collinear ones.
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
            // S_k and C_k (the deflated moments) are never formed: S_k = S − P·diag(t)·Pᵀ and C_k = C − P·diag(t)·Qᵀ
            // over the components so far, and NIPALS only multiplies them by vectors. Updating a [B, p, p] S in place
            // each component cost more than everything else together (memory traffic, and fresh pages for temporaries).
            using var deflated = new DeflatedMoments(xx, xy);
            var ySquares = yy.clone();
            // The Gram of C's smaller side for the power iteration; deflation changes it by a rank-2 term (below), which
            // is cheaper than recomputing it (p·q² per component).
            var qSide = q <= p;
            var gram = qSide ? xy.transpose(1, 2).matmul(xy) : xy.matmul(xy.transpose(1, 2));
            var (ws, ps, qs) = (new List<Tensor>(), new List<Tensor>(), new List<Tensor>());
            var constantBelow = samples * Math.Pow(10 * eps, 2);
            for (var k = 0; k < components; k++)
            {
                using var step = NewDisposeScope();
                var live = HeldScalars.Greater(ySquares, constantBelow);                 // [B, q]
                var alive = live.any(-1);                                // [B]: some target is not yet constant
                var first = live.to(int32).argmax(-1);                   // first live column (the first maximum)
                var (w, count) = PowerIterations(deflated, gram, first, alive, p, q, maxIterations, tolerance);

                // scikit-learn's _svd_flip_1d: the largest |weight| is positive.
                var sign = w.gather(-1, w.abs().argmax(-1, keepdim: true)).sign();
                w = (w * sign).mul(alive.unsqueeze(-1));
                var sw = deflated.S(w);                                  // XkᵀXk w = Xkᵀ t
                var tt = (w * sw).sum(-1);                               // tᵀt
                var safe = where(alive, tt, ones_like(tt));
                var pLoad = sw / safe.unsqueeze(-1);
                var qLoad = deflated.Ct(w) / safe.unsqueeze(-1);
                // The Gram of C − t·pqᵀ: N −= t(q rᵀ + r qᵀ) − t²(pᵀp)qqᵀ with r = Cᵀp (q side);
                // A −= t(p rᵀ + r pᵀ) − t²(qᵀq)ppᵀ with r = Cq (p side). Outer products by broadcasting.
                var t3 = tt.view(batch, 1, 1);
                var (side, other) = qSide ? (qLoad, pLoad) : (pLoad, qLoad);
                var r = qSide ? deflated.Ct(pLoad) : deflated.C(qLoad);
                var cross = side.unsqueeze(-1) * r.unsqueeze(-2);
                gram.sub_(HeldScalars.Add(cross, cross.transpose(1, 2)) * t3);
                HeldScalars.AddInPlace(gram, side.unsqueeze(-1) * (side * (tt.square() * other.square().sum(-1)).unsqueeze(-1)).unsqueeze(-2));
                ySquares.sub_(qLoad.square() * tt.unsqueeze(-1));
                deflated.Add(pLoad, qLoad, tt);
                foreach (var t in new[] { w, pLoad, qLoad, tt }) t.MoveToOuterDisposeScope();
                ws.Add(w);
                ps.Add(pLoad);
                qs.Add(qLoad);
                var counts = count.to(int32).cpu().data<int>().ToArray();
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

    /// <summary>
    /// scikit-learn's NIPALS power iteration in closed form, for a batch. Its iterates are w_k ∝ C·N^k·e_j
    /// (N = CᵀC, j the first live target, w_0 = normalised C e_j), so with N = UΛUᵀ and a = Uᵀe_j every inner product is
    /// a moment of the spectrum: w_k·w_l ∝ m_(k+l+1), m_s = Σ a_i² λ_i^s. The stopping rule ‖w_k − w_(k−1)‖² &lt; tol is
    /// 2 − 2·m_(2k)/√(m_(2k−1)·m_(2k+1)) &lt; tol for unit vectors, evaluated for a chunk of iterations at once; the
    /// chosen iterate is then formed directly. Same iterate and iteration count as the loop (up to rounding, ~1e-15 on
    /// the stopping quantity), but a handful of large operations per component instead of ~10 small ones per iteration,
    /// each of which waits for the thread pool on a busy machine. When p &lt; q the p-side form (A = CCᵀ, w_k ∝ A^k c_j,
    /// m_s = Σ b_i² λ_i^s with b = Vᵀc_j) is used: same result, smaller eigenproblem. scikit-learn divides by ‖w‖ + eps
    /// instead of ‖w‖; the difference (relative eps/‖w‖) is ignored. <paramref name="gram"/> is N (q ≤ p) or A.
    /// </summary>
    private static (Tensor Weights, Tensor Iterations) PowerIterations(DeflatedMoments c, Tensor gram, Tensor first, Tensor alive, long p, long q, int maxIterations, double tolerance)
    {
        // Chunks of iterations double (64, 128, 256, …): slow-converging components cost a few large operations, not
        // many small ones.
        var chunkSize = 64;
        var batch = gram.shape[0];
        var device = gram.device;
        using var scope = NewDisposeScope();
        var qSide = q <= p;
        var (lambda, basis) = linalg.eigh(gram);
        var start = qSide
            ? basis.gather(1, first.view(batch, 1, 1).expand(batch, 1, q)).squeeze(1)             // a = Uᵀ e_j (row j of U)
            : basis.transpose(1, 2).matmul(c.C(nn.functional.one_hot(first.to(int64), q).to(float64)).unsqueeze(-1)).squeeze(-1); // b = Vᵀ c_j
        // Powers of λ/λmax stay in [0, 1] (no overflow up to 2·max_iter); rounding can make a zero eigenvalue slightly
        // negative, which the clamp removes.
        var top = lambda.amax([-1], keepdim: true);
        var scaled = HeldScalars.ClampMin(lambda / where(HeldScalars.Greater(top, 0), top, ones_like(top)), 0).unsqueeze(1);
        var weight = start.square().unsqueeze(1);
        var offset = qSide ? 1 : 0;                                           // w_k·w_l ∝ m_(k+l+offset)

        // Iteration k (1 ≤ k < max_iter) stops when cos(w_(k−1), w_k) = m_(2k−1+o)/√(m_(2k−2+o)·m_(2k+o)) is close enough
        // to 1; then n_iter = k + 1. None: n_iter = max_iter. One target or max_iter = 1: scikit-learn takes one step.
        var iterations = HeldScalars.Full([batch], maxIterations, int64, device);
        var resolved = alive.logical_not();
        if (q == 1 || maxIterations == 1)
        {
            HeldScalars.Fill(iterations, 1);
            HeldScalars.Fill(resolved, 1);
        }
        for (var k0 = 1; k0 < maxIterations && !resolved.all().ToBoolean(); k0 += chunkSize, chunkSize *= 2)
        {
            using var chunk = NewDisposeScope();
            var k1 = Math.Min(k0 + chunkSize, maxIterations);                       // iterations k0 … k1 − 1
            var powers = HeldScalars.Range((2 * k0) - 2 + offset, (2 * k1) - 1 + offset, float64, device).view(1, -1, 1);
            var moments = (weight * scaled.pow(powers)).sum(-1);                // [B, 2(k1 − k0) + 1]
            var even = moments[.., TensorIndex.Slice(0, null, 2)];
            var odd = moments[.., TensorIndex.Slice(1, null, 2)];
            var cosine = odd / (even[.., ..^1] * even[.., 1..]).sqrt();
            var converged = HeldScalars.Less(HeldScalars.Minus(2, HeldScalars.Times(cosine, 2)), tolerance);
            var hit = converged.any(-1).logical_and_(resolved.logical_not());
            iterations.copy_(where(hit, HeldScalars.Plus(converged.to(int32).argmax(-1), (long)k0 + 1), iterations));
            resolved.logical_or_(hit);
        }
        iterations.mul_(alive.to(int64));

        var exponent = HeldScalars.ClampMin(HeldScalars.Plus(iterations, -1L).to(float64), 0).unsqueeze(-1);  // w = w_(n_iter − 1)
        var coordinates = scaled.squeeze(1).pow(exponent) * start;
        var w = basis.matmul(coordinates.unsqueeze(-1)).squeeze(-1);
        if (qSide) w = c.C(w);
        w = Normalise(w, Math.BitIncrement(1.0) - 1.0) * alive.unsqueeze(-1);
        return (w.MoveToOuterDisposeScope(), iterations.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Products with the deflated moments S_k = S − P·diag(t)·Pᵀ and C_k = C − P·diag(t)·Qᵀ ([B, p, p], [B, p, q]) from
    /// the undeflated ones and the loadings so far, for batches of vectors [B, ·]. The loadings are kept stacked
    /// (P [B, p, k], Q [B, q, k], t [B, k]), so a product is a few batched matmuls whatever k — a loop over the
    /// components made the fit O(K²) small operations, which dominated small problems.
    /// </summary>
    private sealed class DeflatedMoments(Tensor s, Tensor c) : IDisposable
    {
        private Tensor? _p, _q, _t;

        public void Add(Tensor p, Tensor q, Tensor t)
        {
            // Held outside every dispose scope (they outlive each component's scope) and disposed here.
            using var scope = NewDisposeScope();
            var (p1, q1, t1) = (p.unsqueeze(-1), q.unsqueeze(-1), t.unsqueeze(-1));
            var next = (_p is null ? p1 : cat([_p, p1], -1), _q is null ? q1 : cat([_q, q1], -1), _t is null ? t1 : cat([_t, t1], -1));
            Dispose();
            (_p, _q, _t) = (next.Item1.DetachFromDisposeScope(), next.Item2.DetachFromDisposeScope(), next.Item3.DetachFromDisposeScope());
        }

        /// <summary>S_k v for v [B, p].</summary>
        public Tensor S(Tensor v) => Apply(s, v, _p, _p);

        /// <summary>C_k v for v [B, q].</summary>
        public Tensor C(Tensor v) => Apply(c, v, _p, _q);

        /// <summary>C_kᵀ v for v [B, p].</summary>
        public Tensor Ct(Tensor v) => Apply(c.transpose(1, 2), v, _q, _p);

        /// <summary>m v − Left·diag(t)·Rightᵀ v.</summary>
        private Tensor Apply(Tensor m, Tensor v, Tensor? left, Tensor? right)
        {
            var result = m.matmul(v.unsqueeze(-1)).squeeze(-1);
            if (left is null || right is null || _t is null) return result;
            var coefficients = _t * right.transpose(1, 2).matmul(v.unsqueeze(-1)).squeeze(-1);   // [B, k]
            return result - left.matmul(coefficients.unsqueeze(-1)).squeeze(-1);
        }

        public void Dispose()
        {
            _p?.Dispose();
            _q?.Dispose();
            _t?.Dispose();
        }
    }

    /// <summary>w / (‖w‖ + eps), as scikit-learn (the eps keeps an all-zero vector at zero).</summary>
    private static Tensor Normalise(Tensor w, double eps) => w / HeldScalars.Plus(w.square().sum(-1, keepdim: true).sqrt(), eps);
}
