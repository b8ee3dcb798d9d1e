using System.Collections.Concurrent;
using TorchSharp;
using static TorchSharp.torch;

namespace Pipeline.Stages.Models.Cells;

/// <summary>
/// Scalars that live as long as the process. TorchSharp 0.107 turns a double in <c>tensor + 1.0</c> or
/// <c>1.0 - tensor</c> into a temporary <see cref="Scalar"/> (and adds an implicit alpha of 1) that only the GC
/// finalizer frees; a finalizer running while the native op still reads it crashed a long training run
/// ("Expected false to be true … toFloat", Scalar.h). The cells' per-step arithmetic passes these held ones instead,
/// with the alpha spelled out.
/// </summary>
internal static class HeldScalars
{
    private static readonly ConcurrentDictionary<double, Scalar> Cache = new();

    public static Scalar Of(double value) => Cache.GetOrAdd(value, v => v.ToScalar());

    /// <summary><c>t + value</c> with held scalars only.</summary>
    public static Tensor Plus(Tensor t, double value) => t.add(Of(value), Of(1));

    /// <summary><c>value − t</c> with held scalars only: −t + value (negation is exact, so bit-identical to rsub).</summary>
    public static Tensor Minus(double value, Tensor t) => t.neg().add(Of(value), Of(1));
}
