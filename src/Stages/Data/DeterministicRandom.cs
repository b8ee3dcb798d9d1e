namespace Pipeline.Stages.Data;

/// <summary>
/// A tiny SplitMix64 generator. Unlike <see cref="Random"/>, its sequence is fixed by this code alone (not by the
/// runtime version), and seeding one per sample from <see cref="Mix"/> makes each sample a pure function of
/// (seed, split, index) whatever thread renders it.
/// </summary>
internal struct DeterministicRandom(ulong seed)
{
    private ulong _state = seed;

    public ulong NextUInt64()
    {
        var z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [0, 1).</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    public float Range(double min, double max) => (float)(min + (max - min) * NextDouble());

    /// <summary>Uniform in [0, n); the modulo bias is below 2^-40 for the sizes used here.</summary>
    public int Next(int n) => (int)(NextUInt64() % (ulong)n);

    public bool Chance(double p) => NextDouble() < p;

    /// <summary>Combines values into one well-mixed seed.</summary>
    public static ulong Mix(params ReadOnlySpan<ulong> values)
    {
        var r = new DeterministicRandom(0x5EED5EED5EED5EEDUL);
        var h = r.NextUInt64();
        foreach (var v in values)
        {
            r = new DeterministicRandom(h ^ v);
            h = r.NextUInt64();
        }
        return h;
    }

    /// <summary>A seeded Fisher-Yates permutation of 0..n-1.</summary>
    public static int[] Permutation(int n, ulong seed)
    {
        var order = new int[n];
        for (var i = 0; i < n; i++) order[i] = i;
        var r = new DeterministicRandom(seed);
        for (var i = n - 1; i > 0; i--)
        {
            var j = r.Next(i + 1);
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order;
    }
}
