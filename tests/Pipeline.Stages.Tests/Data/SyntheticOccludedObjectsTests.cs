using Pipeline.Stages.Data;

namespace Pipeline.Stages.Tests.Data;

public sealed class SyntheticOccludedObjectsTests
{
    [Theory]
    [InlineData(0.0)]
    [InlineData(0.3)]
    [InlineData(0.6)]
    public void Occluders_hide_about_the_requested_fraction_of_the_object(double occlusion)
    {
        var set = new SyntheticOccludedObjects(12, 64, 60, 0, occlusion, 2, seed: 3);

        var fractions = Enumerable.Range(0, 60).Select(i =>
        {
            using var _ = set.Render(ShardSplitName.Train, i, out var occluded);
            return occluded;
        }).ToList();

        Assert.InRange(fractions.Average(), occlusion - 0.08, occlusion + 0.05);
        Assert.All(fractions, f => Assert.InRange(f, 0, occlusion + 0.1 + 1e-9));
    }

    [Fact]
    public void A_sample_depends_only_on_seed_split_and_index()
    {
        var set = new SyntheticOccludedObjects(5, 32, 10, 10, 0.3, 3, seed: 9);
        byte[] Png(ShardSplitName split, int i)
        {
            using var b = set.Render(split, i);
            return ImageCodec.Encode(b, ShardImageFormat.Png, 0);
        }

        var forward = Enumerable.Range(0, 10).Select(i => Png(ShardSplitName.Train, i)).ToList();
        var backward = Enumerable.Range(0, 10).Reverse().Select(i => Png(ShardSplitName.Train, i)).Reverse().ToList();

        Assert.Equal(forward, backward);
        Assert.NotEqual(forward[0], Png(ShardSplitName.Val, 0));
    }

    [Fact]
    public void More_than_twelve_classes_pair_shapes_with_textures()
    {
        var set = new SyntheticOccludedObjects(48, 32, 1, 0, 0, 0, seed: 0);

        Assert.Equal("circle-solid", set.Classes[0]);
        Assert.Equal("circle-stripes", set.Classes[12]);
        Assert.Equal("l-shape-dots", set.Classes[47]);
        Assert.Equal(48, set.Classes.Distinct().Count());
    }
}
