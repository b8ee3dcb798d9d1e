using Pipeline.Stages.Data;

namespace Pipeline.Stages.Training;

/// <summary>
/// The order in which one epoch visits a split: a pure function of (manifest, seed, epoch). With shuffling, the shards
/// are permuted and each shard's samples are permuted on their own (WebDataset style: one shard is read at a time, so
/// only the shard list and the samples inside a shard can be reordered cheaply). Without, the manifest's order.
/// </summary>
internal static class EpochOrder
{
    // Distinct stream tags, so the shard order, a shard's sample order and the augmentation never share a seed.
    private const ulong ShardOrderTag = 0x5EA2_D000_0001;
    private const ulong SampleOrderTag = 0x5EA2_D000_0002;
    private const ulong AugmentationTag = 0x5EA2_D000_0003;

    /// <summary>Samples one epoch uses: the split's shard totals, capped at <paramref name="maxSamples"/>.</summary>
    public static int SampleCount(ShardManifest manifest, ShardSplitName split, int? maxSamples)
    {
        var total = manifest.Split(split).Shards.Sum(s => (long)s.Samples);
        return (int)Math.Min(total, maxSamples ?? int.MaxValue);
    }

    /// <summary>Indices into the split's shard list, in visiting order.</summary>
    public static int[] Shards(ShardManifest manifest, ShardSplitName split, long seed, int epoch, bool shuffle)
    {
        var n = manifest.Split(split).Shards.Count;
        return shuffle
            ? DeterministicRandom.Permutation(n, DeterministicRandom.Mix((ulong)seed, (ulong)epoch, (ulong)split, ShardOrderTag))
            : Enumerable.Range(0, n).ToArray();
    }

    /// <summary>Indices into a shard's samples (file order), in visiting order; the seed uses the shard's manifest index.</summary>
    public static int[] Samples(int sampleCount, int shardIndex, ShardSplitName split, long seed, int epoch, bool shuffle) =>
        shuffle
            ? DeterministicRandom.Permutation(sampleCount, DeterministicRandom.Mix((ulong)seed, (ulong)epoch, (ulong)split, (ulong)shardIndex, SampleOrderTag))
            : Enumerable.Range(0, sampleCount).ToArray();

    /// <summary>The augmentation seed of the sample at <paramref name="position"/> of the epoch.</summary>
    public static ulong AugmentationSeed(long seed, int epoch, ShardSplitName split, long position) =>
        DeterministicRandom.Mix((ulong)seed, (ulong)epoch, (ulong)split, (ulong)position, AugmentationTag);
}
