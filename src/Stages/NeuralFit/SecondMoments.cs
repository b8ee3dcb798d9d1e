using Pipeline.Stages.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Pipeline.Stages.NeuralFit;

/// <summary>
/// XᵀX, XᵀY and the column sums of one data set, from which the centred moments of any subset of its rows follow by
/// subtracting the left-out rows' moments: a 90 % training set then costs a 10 % product instead of a 90 % one. X and Y
/// are first shifted by their overall means so that the subtraction does not cancel (features with a large mean, e.g.
/// after a ReLU, would otherwise lose digits in XᵀX − n·x̄x̄ᵀ).
/// </summary>
internal sealed class SecondMoments : IDisposable
{
    private SecondMoments(Tensor x, Tensor y, Tensor xShift, Tensor yShift)
    {
        X = x;
        Y = y;
        XShift = xShift;
        YShift = yShift;
        XX = x.T.matmul(x);
        XY = x.T.matmul(y);
        YSquares = y.square().sum(dim: 0);
        XSum = x.sum(dim: 0);
        YSum = y.sum(dim: 0);
    }

    /// <summary>The shifted data (X − overall mean), [n, p] and [n, q].</summary>
    public Tensor X { get; }
    public Tensor Y { get; }
    public Tensor XShift { get; }
    public Tensor YShift { get; }
    public Tensor XX { get; }
    public Tensor XY { get; }
    public Tensor YSquares { get; }
    public Tensor XSum { get; }
    public Tensor YSum { get; }

    public long Count => X.shape[0];

    /// <summary>Float64 copies on <paramref name="device"/>; the caller keeps its own tensors.</summary>
    public static SecondMoments Of(Tensor x, Tensor y, Device device)
    {
        using var scope = NewDisposeScope();
        var xs = x.to(float64, device);
        var ys = y.to(float64, device);
        var (xShift, yShift) = (xs.mean([0]), ys.mean([0]));
        var m = new SecondMoments(xs - xShift, ys - yShift, xShift, yShift);
        foreach (var t in m.All()) t.MoveToOuterDisposeScope();
        return m;
    }

    /// <summary>
    /// The centred moments of all rows except <paramref name="excluded"/>: S = XcᵀXc [p, p], C = XcᵀYc [p, q], the
    /// column sums of Yc², and the subset's means in the original units (so (x − XMean)·coef + YMean predicts raw x).
    /// Created in the caller's dispose scope.
    /// </summary>
    public (Tensor S, Tensor C, Tensor YSquares, Tensor XMean, Tensor YMean, long Count) Without(long[] excluded)
    {
        var rows = tensor(excluded, device: X.device);
        var (xe, ye) = (X.index_select(0, rows), Y.index_select(0, rows));
        var count = Count - excluded.Length;
        var mx = HeldScalars.DividedBy(XSum - xe.sum(dim: 0), count);
        var my = HeldScalars.DividedBy(YSum - ye.sum(dim: 0), count);
        var s = XX - xe.T.matmul(xe) - HeldScalars.Times(mx.unsqueeze(-1).matmul(mx.unsqueeze(0)), count);
        var c = XY - xe.T.matmul(ye) - HeldScalars.Times(mx.unsqueeze(-1).matmul(my.unsqueeze(0)), count);
        var yy = YSquares - ye.square().sum(dim: 0) - HeldScalars.Times(my.square(), count);
        return (s, c, yy, HeldScalars.Add(mx, XShift), HeldScalars.Add(my, YShift), count);
    }

    private Tensor[] All() => [X, Y, XShift, YShift, XX, XY, YSquares, XSum, YSum];

    public void Dispose()
    {
        foreach (var t in All()) t.Dispose();
    }
}
