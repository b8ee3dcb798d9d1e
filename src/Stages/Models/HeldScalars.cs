using TorchSharp;
using static TorchSharp.torch;

namespace Pipeline.Stages.Models;

/// <summary>
/// Tensor arithmetic with numbers, with every <see cref="Scalar"/> alive until libtorch has returned. TorchSharp 0.107
/// turns a number in <c>t + 1.0</c>, <c>t * 2</c> or <c>elu(t, 1.0)</c> (and the hidden alpha of <c>a + b</c>) into a
/// temporary Scalar that only the GC finalizer frees; a garbage collection triggered by another thread while the op runs
/// can free it before libtorch reads it. That crashed a long training run inside libtorch ("Expected false to be true …
/// toFloat", Scalar.h) and turned the losses of a healthy basenet-wide into NaN at random steps. BannedSymbols.txt makes
/// the unsafe forms build errors; these are their replacements. Results are bit-identical to the plain operators.
/// </summary>
public static class HeldScalars
{
    /// <summary>1, held for the process lifetime: the explicit alpha of additions.</summary>
    public static readonly Scalar One = 1.0.ToScalar();

    /// <summary>The integral 1: libtorch refuses a floating-point alpha for integer tensors.</summary>
    private static readonly Scalar IntegralOne = 1L.ToScalar();

    /// <summary><c>a + b</c>.</summary>
    public static Tensor Add(Tensor a, Tensor b) => a.add(b, AlphaFor(a));

    /// <summary><c>a += b</c>.</summary>
    public static Tensor AddInPlace(Tensor a, Tensor b) => a.add_(b, AlphaFor(a));

    /// <summary><c>t + value</c>.</summary>
    public static Tensor Plus(Tensor t, double value)
    {
        using var s = value.ToScalar();
        return t.add(s, AlphaFor(t));
    }

    /// <summary><c>t + value</c> for integer tensors (a double would promote them to floating point).</summary>
    public static Tensor Plus(Tensor t, long value)
    {
        using var s = value.ToScalar();
        return t.add(s, AlphaFor(t));
    }

    /// <summary><c>value − t</c>: −t + value (negation is exact, so bit-identical to rsub).</summary>
    public static Tensor Minus(double value, Tensor t)
    {
        using var s = value.ToScalar();
        using var negated = t.neg();
        return negated.add(s, AlphaFor(t));
    }

    /// <summary><c>t · value</c>.</summary>
    public static Tensor Times(Tensor t, double value)
    {
        using var s = value.ToScalar();
        return t.mul(s);
    }

    /// <summary><c>t / value</c>.</summary>
    public static Tensor DividedBy(Tensor t, double value)
    {
        using var s = value.ToScalar();
        return t.div(s);
    }

    /// <summary><c>t &gt; value</c>.</summary>
    public static Tensor Greater(Tensor t, double value)
    {
        using var s = value.ToScalar();
        return t.gt(s);
    }

    /// <summary><c>t ≥ value</c>.</summary>
    public static Tensor GreaterOrEqual(Tensor t, double value)
    {
        using var s = value.ToScalar();
        return t.ge(s);
    }

    /// <summary><c>t &lt; value</c>.</summary>
    public static Tensor Less(Tensor t, double value)
    {
        using var s = value.ToScalar();
        return t.lt(s);
    }

    /// <summary><c>max(t, min)</c>.</summary>
    public static Tensor ClampMin(Tensor t, double min)
    {
        using var s = min.ToScalar();
        return t.clamp_min(s);
    }

    /// <summary><c>t</c> clamped to [min, max].</summary>
    public static Tensor Clamp(Tensor t, double min, double max)
    {
        using var lo = min.ToScalar();
        using var hi = max.ToScalar();
        return t.clamp(lo, hi);
    }

    /// <summary>ELU with α = 1 (the models' activation).</summary>
    public static Tensor Elu(Tensor x) => x.elu(One, One, One);

    /// <summary><c>t + v · a ∘ b</c>.</summary>
    public static Tensor AddProduct(Tensor t, Tensor a, Tensor b, double value = 1)
    {
        using var s = value.ToScalar();
        return t.addcmul(a, b, s);
    }

    /// <summary>A tensor of <paramref name="shape"/> filled with <paramref name="value"/>.</summary>
    public static Tensor Full(long[] shape, double value, ScalarType dtype, Device? device = null)
    {
        using var s = value.ToScalar();
        return full(shape, s, dtype, device);
    }

    /// <summary>A tensor like <paramref name="t"/> filled with <paramref name="value"/>.</summary>
    public static Tensor FullLike(Tensor t, double value)
    {
        using var s = value.ToScalar();
        return full_like(t, s);
    }

    /// <summary>Fills <paramref name="t"/> with <paramref name="value"/> in place.</summary>
    public static Tensor Fill(Tensor t, double value)
    {
        using var s = value.ToScalar();
        return t.fill_(s);
    }

    /// <summary><c>start, start + 1, …</c> below <paramref name="stop"/>.</summary>
    public static Tensor Range(long start, long stop, ScalarType dtype, Device? device = null)
    {
        using var from = start.ToScalar();
        using var to = stop.ToScalar();
        return arange(from, to, One, dtype, device);
    }

    private static Scalar AlphaFor(Tensor t) => t.is_floating_point() || t.is_complex() ? One : IntegralOne;
}
