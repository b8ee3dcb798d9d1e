namespace Pipeline.Stages.NeuralFit;

/// <summary>
/// SplitMix64 (Steele, Lea &amp; Flood 2014): a tiny generator whose stream is fixed by this code alone, so splits and
/// halvings stay the same across .NET versions (System.Random's seeded stream is an implementation detail).
/// </summary>
internal sealed class SplitRandom(ulong seed)
{
    private ulong _state = seed;

    /// <summary>A stream for one (seed, purpose, index) triple: independent streams for each split and halving.</summary>
    public static SplitRandom For(long seed, int purpose, int index) =>
        new(Mix((ulong)seed ^ Mix(((ulong)(uint)purpose << 32) | (uint)index)));

    public ulong Next()
    {
        _state += 0x9E3779B97F4A7C15UL;
        return Mix(_state);
    }

    /// <summary>Uniform in [0, bound) by Lemire's multiply-shift (bias below 2^-32 for the sizes used here).</summary>
    public int Below(int bound) => (int)Math.BigMul(Next(), (ulong)bound, out _);

    /// <summary>Fisher–Yates, in place.</summary>
    public void Shuffle<T>(T[] items)
    {
        for (var i = items.Length - 1; i > 0; i--)
        {
            var j = Below(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
