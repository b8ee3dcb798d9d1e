using System.Security.Cryptography;
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
        var set = new SyntheticOccludedObjects(12, 64, 60, 0, occlusion, 2, seed: 3, minContrast: 0);

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
        var set = new SyntheticOccludedObjects(5, 32, 10, 10, 0.3, 3, seed: 9, minContrast: 0.3);
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
        var set = new SyntheticOccludedObjects(48, 32, 1, 0, 0, 0, seed: 0, minContrast: 0);

        Assert.Equal("circle-solid", set.Classes[0]);
        Assert.Equal("circle-stripes", set.Classes[12]);
        Assert.Equal("l-shape-dots", set.Classes[47]);
        Assert.Equal(48, set.Classes.Distinct().Count());
    }

    [Fact]
    public void Without_a_min_contrast_the_hard_set_renders_as_it_always_did()
    {
        // The pixels of these 16 scenes, hashed before min_contrast existed (commit ec08ed9).
        var set = new SyntheticOccludedObjects(4, 32, 16, 0, 0.2, 2, seed: 0, minContrast: 0);
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        for (var i = 0; i < 16; i++)
        {
            using var b = set.Render(ShardSplitName.Train, i);
            sha.AppendData(b.GetPixelSpan());
        }

        Assert.Equal("ac5f71a6ac9975624a84ac937bd5b62e7d6c0d175163beb9c50e6eb488caabe2", Convert.ToHexStringLower(sha.GetHashAndReset()));
    }

    [Theory]
    [InlineData(0.1)]
    [InlineData(0.3)]
    [InlineData(ContrastPalette.MaxContrast)]
    public void Every_object_colour_differs_from_the_background_and_occluders_by_the_min_contrast(double contrast)
    {
        var objectLight = 0;
        for (ulong i = 0; i < 2000; i++)
        {
            var rng = new DeterministicRandom(DeterministicRandom.Mix(7, i));
            var p = ContrastPalette.Draw(ref rng, contrast);
            var obj = new[] { p.ObjectBase, p.ObjectPattern }.Select(ContrastPalette.Luma).ToList();
            var rest = new[] { p.Background1, p.Background2, p.Occluder }.Select(ContrastPalette.Luma).ToList();

            var gap = obj.Min() > rest.Max() ? obj.Min() - rest.Max() : rest.Min() - obj.Max();
            Assert.True(gap >= contrast, $"draw {i}: object lumas {string.Join(", ", obj)}, background and occluder lumas {string.Join(", ", rest)}");
            if (obj.Min() > rest.Max()) objectLight++;
        }
        Assert.InRange(objectLight, 800, 1200); // light objects on dark ground and dark on light, about equally often
    }

    [Fact]
    public void With_a_min_contrast_every_scene_splits_into_two_lumas_apart()
    {
        // Without occluders and clutter a scene is object and background, which must lie at least 0.3 apart in luma:
        // some luma interval of that width (less rounding) holds only the antialiased edge pixels, with pixels on both
        // sides. Independent colours fail this for many scenes.
        static bool Splits(SyntheticOccludedObjects set, int i)
        {
            using var b = set.Render(ShardSplitName.Train, i);
            var lumas = Enumerable.Range(0, 48 * 48).Select(k => ContrastPalette.Luma(b.GetPixel(k % 48, k / 48))).Order().ToArray();
            var n = lumas.Length;
            for (var start = 0; start < n; start++)
            {
                // (lumas[start], lumas[start] + 0.29): lumas[..below] are at or under it, lumas[below..above] inside
                var below = start;
                while (below < n && lumas[below] <= lumas[start]) below++;
                var above = below;
                while (above < n && lumas[above] < lumas[start] + 0.29) above++;
                if (below >= 0.05 * n && n - above >= 0.05 * n && above - below <= 0.15 * n) return true;
            }
            return false;
        }
        var contrast = new SyntheticOccludedObjects(4, 48, 40, 0, occlusion: 0, clutter: 0, seed: 5, minContrast: 0.3);
        var independent = new SyntheticOccludedObjects(4, 48, 40, 0, occlusion: 0, clutter: 0, seed: 5, minContrast: 0);

        Assert.All(Enumerable.Range(0, 40), i => Assert.True(Splits(contrast, i), $"scene {i} has no luma gap"));
        Assert.True(Enumerable.Range(0, 40).Count(i => !Splits(independent, i)) >= 8);
    }
}
