using System.Text.Json;
using Pipeline.Stages.Data;
using Pipeline.Stages.Tests.Data;
using Pipeline.Stages.Training;
using SkiaSharp;

namespace Pipeline.Stages.Tests.Training;

public sealed class BatchLoaderTests : IDisposable
{
    private readonly StageTestHarness _h = new();

    public void Dispose() => _h.Dispose();

    private static BatchLoaderOptions Options(int batchSize = 8, bool train = false, AugmentationKind kind = AugmentationKind.None, bool shuffle = true) => new()
    {
        Split = ShardSplitName.Train,
        BatchSize = batchSize,
        ImageSize = 16,
        Channels = 3,
        Normalization = ImageNormalization.ImageNet,
        Augmentation = new AugmentationParams { Kind = kind },
        Train = train,
        Seed = 5,
        Shuffle = shuffle,
    };

    // A fresh cache folder per reader, so each loader really reads the store.
    private ShardReader Reader(ShardManifest m) => new(_h.Store, m, _h.NewFolder("cache-" + Guid.NewGuid().ToString("N")));

    private static async Task<List<TrainingBatch>> ReadAll(ShardReader reader, BatchLoaderOptions options)
    {
        await using var loader = new BatchLoader(reader, options);
        var batches = new List<TrainingBatch>();
        while (await loader.NextAsync(CancellationToken.None) is { } batch) batches.Add(batch);
        return batches;
    }

    private static void AssertSameBatches(IReadOnlyList<TrainingBatch> expected, IReadOnlyList<TrainingBatch> actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (var i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i].Index, actual[i].Index);
            Assert.Equal(expected[i].Keys, actual[i].Keys);
            Assert.Equal(expected[i].Labels, actual[i].Labels);
            Assert.True(expected[i].Images.AsSpan().SequenceEqual(actual[i].Images), $"batch {expected[i].Index}: images differ");
        }
    }

    private static string[] Keys(IEnumerable<TrainingBatch> batches) => batches.SelectMany(b => b.Keys).ToArray();

    [Fact]
    public async Task Every_sample_appears_exactly_once_and_the_batch_count_matches()
    {
        var m = await TestShards.SyntheticAsync(_h);
        var all = await Reader(m).ReadAsync(ShardSplitName.Train).Select(s => s.Key).ToListAsync();

        var batches = await ReadAll(Reader(m), Options(train: true, kind: AugmentationKind.Natural));
        var dropped = await ReadAll(Reader(m), Options(train: true, kind: AugmentationKind.Natural) with { DropLast = true });

        Assert.Equal(9, BatchLoader.BatchesPerEpoch(m, ShardSplitName.Train, 8, dropLast: false));
        Assert.Equal(8, BatchLoader.BatchesPerEpoch(m, ShardSplitName.Train, 8, dropLast: true));
        Assert.Equal(3, BatchLoader.BatchesPerEpoch(m, ShardSplitName.Train, 8, dropLast: false, maxSamples: 20));
        Assert.Equal(Enumerable.Range(0, 9), batches.Select(b => b.Index));
        Assert.Equal(all.Order(), Keys(batches).Order());
        Assert.Equal([.. Enumerable.Repeat(8, 8), 6], batches.Select(b => b.Count));
        Assert.All(batches, b => Assert.Equal(b.Count * 3 * 16 * 16, b.Images.Length));
        // Synthetic classes cycle with the source index, which the key carries.
        Assert.All(batches, b => Assert.Equal(b.Keys.Select(k => (long)(int.Parse(k["train_".Length..]) % 3)), b.Labels));
        Assert.Equal(8, dropped.Count);
        Assert.Equal(64, Keys(dropped).Distinct().Count());
        Assert.Equal(Keys(batches).Take(64), Keys(dropped));
    }

    [Fact]
    public async Task Same_options_give_identical_batches_whatever_the_decode_threads()
    {
        var m = await TestShards.SyntheticAsync(_h);
        var options = Options(train: true, kind: AugmentationKind.Natural);

        var first = await ReadAll(Reader(m), options);
        var again = await ReadAll(Reader(m), options);
        var threaded = await ReadAll(Reader(m), options with { DecodeThreads = 3, PrefetchBatches = 1 });

        AssertSameBatches(first, again);
        AssertSameBatches(first, threaded);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(7)]
    [InlineData(11)]
    public async Task Resuming_at_batch_k_gives_batches_k_onwards_of_an_uninterrupted_pass(int k)
    {
        // Batches of 6 over shards of 16: resume positions fall inside shards and at different offsets.
        var m = await TestShards.SyntheticAsync(_h);
        var options = Options(batchSize: 6, train: true, kind: AugmentationKind.Occluders) with { Epoch = 2 };
        var full = await ReadAll(Reader(m), options);

        var resumed = await ReadAll(Reader(m), options with { StartBatch = k, DecodeThreads = 2 });

        Assert.Equal(12, full.Count);
        AssertSameBatches(full.Skip(k).ToList(), resumed);
    }

    [Fact]
    public async Task Resuming_past_the_last_batch_gives_nothing()
    {
        var m = await TestShards.SyntheticAsync(_h);

        var resumed = await ReadAll(Reader(m), Options() with { StartBatch = 9 });

        Assert.Empty(resumed);
    }

    [Fact]
    public async Task Resuming_skips_earlier_shards_without_reading_them()
    {
        var m = await TestShards.SyntheticAsync(_h);
        var options = Options(shuffle: false);
        var full = await ReadAll(Reader(m), options);
        // Positions 0..31 live in the first two shards; batch 4 starts at position 32.
        foreach (var shard in m.Train.Shards.Take(2)) await _h.Store.DeleteAsync(m.ShardPath(shard));

        var resumed = await ReadAll(Reader(m), options with { StartBatch = 4 });

        AssertSameBatches(full.Skip(4).ToList(), resumed);
    }

    [Fact]
    public async Task Shuffled_epochs_differ_and_unshuffled_ones_follow_the_manifest()
    {
        var m = await TestShards.SyntheticAsync(_h);
        var manifestOrder = await Reader(m).ReadAsync(ShardSplitName.Train).Select(s => s.Key).ToListAsync();

        var shuffled0 = Keys(await ReadAll(Reader(m), Options()));
        var shuffled1 = Keys(await ReadAll(Reader(m), Options() with { Epoch = 1 }));
        var plain0 = Keys(await ReadAll(Reader(m), Options(shuffle: false)));
        var plain1 = Keys(await ReadAll(Reader(m), Options(shuffle: false) with { Epoch = 1 }));

        Assert.NotEqual(shuffled0, shuffled1);
        Assert.Equal(shuffled0.Order(), shuffled1.Order());
        Assert.NotEqual(manifestOrder, shuffled0);
        Assert.Equal(manifestOrder, plain0);
        Assert.Equal(manifestOrder, plain1);
    }

    [Fact]
    public async Task Max_samples_takes_the_start_of_the_epoch_order()
    {
        var m = await TestShards.SyntheticAsync(_h);
        var full = Keys(await ReadAll(Reader(m), Options()));

        var subset = await ReadAll(Reader(m), Options() with { MaxSamples = 20 });

        Assert.Equal([8, 8, 4], subset.Select(b => b.Count));
        Assert.Equal(full.Take(20), Keys(subset));
    }

    [Fact]
    public async Task Normalization_maps_a_known_colour_to_the_expected_values()
    {
        var m = await TestShards.CustomAsync(_h, ["a", "b"], [("solid", TestShards.Png(16, 16, new SKColor(255, 0, 128)), 1)], perShard: 4);

        var rgb = (await ReadAll(Reader(m), Options(batchSize: 4)))[0];
        var grey = (await ReadAll(Reader(m), Options(batchSize: 4) with { Channels = 1, Normalization = ImageNormalization.Default(1) }))[0];

        Assert.Equal([1L], rgb.Labels);
        float[] expected = [(1f - 0.485f) / 0.229f, (0f - 0.456f) / 0.224f, (128f / 255f - 0.406f) / 0.225f];
        for (var c = 0; c < 3; c++)
            Assert.All(rgb.Images.AsSpan(c * 256, 256).ToArray(), v => Assert.Equal(expected[c], v, 5));
        var luma = (0.299f * 255 + 0.114f * 128) / 255f;
        Assert.Equal(256, grey.Images.Length);
        Assert.All(grey.Images, v => Assert.Equal((luma - 0.5f) / 0.25f, v, 5));
        Assert.Equal([0.5f], ImageNormalization.Default(1).Mean);
        Assert.Same(ImageNormalization.ImageNet, ImageNormalization.Default(3));
    }

    [Fact]
    public async Task Augmentations_change_the_pixels_and_stay_deterministic()
    {
        var m = await TestShards.SyntheticAsync(_h);
        var eval = (await ReadAll(Reader(m), Options()))[0];
        var evalWithNaturalKind = (await ReadAll(Reader(m), Options(kind: AugmentationKind.Natural)))[0];
        var natural = await ReadAll(Reader(m), Options(train: true, kind: AugmentationKind.Natural));
        var naturalAgain = await ReadAll(Reader(m), Options(train: true, kind: AugmentationKind.Natural));
        var occluders = (await ReadAll(Reader(m), Options(train: true) with { Augmentation = new() { Kind = AugmentationKind.Occluders, Flip = false } }))[0];

        // Train = false means the eval transform whatever the augmentation kind.
        Assert.Equal(eval.Images, evalWithNaturalKind.Images);
        Assert.Equal(eval.Keys, natural[0].Keys);
        Assert.NotEqual(eval.Images, natural[0].Images);
        AssertSameBatches(natural, naturalAgain);

        // Without the flip, occluders only replace pixels of the eval image, each with a grey (r = g = b) level.
        Assert.NotEqual(eval.Images, occluders.Images);
        var plane = 16 * 16;
        var mean = ImageNormalization.ImageNet.Mean;
        var std = ImageNormalization.ImageNet.Std;
        var changed = 0;
        for (var i = 0; i < eval.Count; i++)
        {
            for (var p = 0; p < plane; p++)
            {
                var at = i * 3 * plane + p;
                if (eval.Images[at] == occluders.Images[at] && eval.Images[at + plane] == occluders.Images[at + plane]) continue;
                changed++;
                var rgb = Enumerable.Range(0, 3).Select(c => occluders.Images[at + c * plane] * std[c] + mean[c]).ToArray();
                Assert.Equal(rgb[0], rgb[1], 4);
                Assert.Equal(rgb[0], rgb[2], 4);
            }
        }
        Assert.InRange(changed, 1, eval.Count * plane * 45 / 100);
    }

    [Fact]
    public async Task Non_square_images_are_resized_on_the_short_side_and_centre_cropped()
    {
        // Landscape 40x24 and portrait 24x40, red in the central square, blue outside it.
        var landscape = TestShards.Png(40, 24, SKColors.Blue, SKRectI.Create(8, 0, 24, 24), SKColors.Red);
        var portrait = TestShards.Png(24, 40, SKColors.Blue, SKRectI.Create(0, 8, 24, 24), SKColors.Red);
        var m = await TestShards.CustomAsync(_h, ["a"], [("wide", landscape, 0), ("tall", portrait, 0)], perShard: 2);
        var identity = new ImageNormalization([0f, 0f, 0f], [1f, 1f, 1f]);

        var eval = (await ReadAll(Reader(m), Options(shuffle: false) with { Normalization = identity }))[0];
        var natural = (await ReadAll(Reader(m), Options(train: true, kind: AugmentationKind.Natural) with { ImageSize = 12 }))[0];
        // A full-area square crop never fits, so the random-resized crop falls back to the centred square: the red one.
        var centred = new AugmentationParams { Kind = AugmentationKind.Natural, MinScale = 1, MaxScale = 1, MinRatio = 1, MaxRatio = 1 };
        var fallback = (await ReadAll(Reader(m), Options(train: true, shuffle: false) with { Normalization = identity, Augmentation = centred }))[0];

        Assert.Equal(2 * 3 * 16 * 16, eval.Images.Length);
        foreach (var batch in new[] { eval, fallback })
        {
            for (var i = 0; i < 2; i++)
            {
                // The crop is (almost) the red square: away from its blended border every pixel is red.
                for (var y = 2; y < 14; y++)
                {
                    for (var x = 2; x < 14; x++)
                    {
                        var at = i * 768 + y * 16 + x;
                        Assert.True(batch.Images[at] > 0.9f && batch.Images[at + 512] < 0.1f, $"image {i} pixel ({x}, {y}) is not red");
                    }
                }
            }
        }
        Assert.Equal(2 * 3 * 12 * 12, natural.Images.Length);
        Assert.All(natural.Images, v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void Random_resized_crop_falls_back_to_the_largest_centred_box_of_an_allowed_aspect()
    {
        var square = new AugmentationParams { MinScale = 1, MaxScale = 1, MinRatio = 1, MaxRatio = 1 };
        var rng = new DeterministicRandom(1);

        // A full-area square cannot fit a 40x24 image in ten tries: the fallback is the centred 24x24.
        Assert.Equal((0, 8, 24, 24), SampleTransform.RandomResizedCropBox(24, 40, square, ref rng));
        Assert.Equal((8, 0, 24, 24), SampleTransform.RandomResizedCropBox(40, 24, square, ref rng));

        var natural = new AugmentationParams();
        for (var i = 0; i < 200; i++)
        {
            var (top, left, h, w) = SampleTransform.RandomResizedCropBox(30, 50, natural, ref rng);
            Assert.InRange(top, 0, 30 - h);
            Assert.InRange(left, 0, 50 - w);
            Assert.InRange(h, 1, 30);
            Assert.InRange(w, 1, 50);
        }
    }

    [Fact]
    public async Task A_tampered_shard_fails_with_its_path_after_the_batches_before_it()
    {
        var m = await TestShards.SyntheticAsync(_h);
        var bad = m.ShardPath(m.Train.Shards[2]);
        var file = _h.Store.FullPath(bad);
        var bytes = File.ReadAllBytes(file);
        bytes[1000] ^= 0x40;
        File.WriteAllBytes(file, bytes);
        await using var loader = new BatchLoader(Reader(m), Options(shuffle: false));

        // Shards 0 and 1 hold positions 0..31: batches 0..3.
        for (var b = 0; b < 4; b++) Assert.Equal(b, (await loader.NextAsync(CancellationToken.None))!.Index);
        var e = await Assert.ThrowsAnyAsync<IOException>(() => loader.NextAsync(CancellationToken.None).AsTask());

        Assert.Contains(bad, e.Message);
    }

    [Fact]
    public async Task A_missing_shard_fails_with_its_path()
    {
        var m = await TestShards.SyntheticAsync(_h);
        var missing = m.ShardPath(m.Train.Shards[0]);
        await _h.Store.DeleteAsync(missing);
        await using var loader = new BatchLoader(Reader(m), Options(shuffle: false));

        var e = await Assert.ThrowsAnyAsync<IOException>(() => loader.NextAsync(CancellationToken.None).AsTask());

        Assert.Contains(missing, e.Message);
    }

    [Fact]
    public async Task A_shard_that_is_not_a_tar_fails_with_its_path_and_the_fix()
    {
        var good = await TestShards.CustomAsync(_h, ["a"], [("x", TestShards.Png(16, 16, SKColors.Red), 0)], perShard: 1);
        var path = good.ShardPath(good.Train.Shards[0]);
        var info = await _h.Store.PutAsync(path, new MemoryStream(new byte[3000].Select((_, i) => (byte)(i * 7 + 1)).ToArray()), "application/x-tar");
        var m = good with { Train = good.Train with { Shards = [new ShardFileInfo(good.Train.Shards[0].File, info.Sha256, info.Bytes, 1)] } };
        await using var loader = new BatchLoader(Reader(m), Options());

        var e = await Assert.ThrowsAsync<InvalidDataException>(() => loader.NextAsync(CancellationToken.None).AsTask());

        Assert.StartsWith($"Shard '{path}' could not be read", e.Message);
        Assert.EndsWith("Re-run the shard stage.", e.Message);
    }

    [Fact]
    public async Task A_label_outside_the_classes_names_the_shard_and_the_key()
    {
        var m = await TestShards.CustomAsync(_h, ["a", "b", "c"],
            [("fine", TestShards.Png(16, 16, SKColors.Red), 2), ("wrong", TestShards.Png(16, 16, SKColors.Red), 3)], perShard: 4);
        await using var loader = new BatchLoader(Reader(m), Options(shuffle: false));

        var e = await Assert.ThrowsAsync<InvalidDataException>(() => loader.NextAsync(CancellationToken.None).AsTask());

        Assert.Contains("'wrong'", e.Message);
        Assert.Contains(m.ShardPath(m.Train.Shards[0]), e.Message);
        Assert.Contains("label 3", e.Message);
    }

    [Fact]
    public async Task An_undecodable_image_names_the_shard_and_the_key_and_is_not_decoded_when_skipped()
    {
        var m = await TestShards.CustomAsync(_h, ["a"],
            [("broken", "not an image"u8.ToArray(), 0), ("one", TestShards.Png(16, 16, SKColors.Red), 0), ("two", TestShards.Png(16, 16, SKColors.Red), 0)], perShard: 8);

        var e = await Assert.ThrowsAsync<InvalidDataException>(() => ReadAll(Reader(m), Options(batchSize: 1, shuffle: false) with { DecodeThreads = 2 }));
        var resumed = await ReadAll(Reader(m), Options(batchSize: 1, shuffle: false) with { StartBatch = 1 });

        Assert.Contains("'broken'", e.Message);
        Assert.Contains(m.ShardPath(m.Train.Shards[0]), e.Message);
        Assert.Equal(["one", "two"], Keys(resumed));
    }

    [Fact]
    public async Task Wait_time_grows_while_the_consumer_waits_for_the_first_batch()
    {
        var m = await TestShards.SyntheticAsync(_h);
        var gated = new GatedStore(_h.Store);
        await using var loader = new BatchLoader(new ShardReader(gated, m, _h.NewFolder("cache-gated")), Options());
        Assert.Equal(TimeSpan.Zero, loader.WaitTime);

        // No shard can be read until the gate opens, so this call has to wait for the producer.
        var first = loader.NextAsync(CancellationToken.None);
        gated.Open();
        var batch = await first;

        Assert.NotNull(batch);
        Assert.True(loader.WaitTime > TimeSpan.Zero);
        var before = loader.WaitTime;
        while (await loader.NextAsync(CancellationToken.None) is not null)
        {
        }
        Assert.True(loader.WaitTime >= before);
    }

    [Fact]
    public async Task Disposing_mid_epoch_stops_the_producer_without_throwing()
    {
        var m = await TestShards.SyntheticAsync(_h);
        var loader = new BatchLoader(Reader(m), Options() with { PrefetchBatches = 1 });
        Assert.NotNull(await loader.NextAsync(CancellationToken.None));

        await loader.DisposeAsync();
        await loader.DisposeAsync();

        await Assert.ThrowsAsync<ObjectDisposedException>(() => loader.NextAsync(CancellationToken.None).AsTask());
    }

    [Theory]
    [InlineData("BatchSize")]
    [InlineData("ImageSize")]
    [InlineData("Channels")]
    [InlineData("Normalization")]
    [InlineData("MaxSamples")]
    [InlineData("StartBatch")]
    [InlineData("DecodeThreads")]
    [InlineData("PrefetchBatches")]
    [InlineData("Augmentation")]
    public async Task Bad_options_are_refused_naming_the_option(string option)
    {
        var m = await TestShards.CustomAsync(_h, ["a"], [("x", TestShards.Png(16, 16, SKColors.Red), 0)], perShard: 1);
        var o = Options();
        o = option switch
        {
            "BatchSize" => o with { BatchSize = 0 },
            "ImageSize" => o with { ImageSize = 7 },
            "Channels" => o with { Channels = 2, Normalization = new([0f, 0f], [1f, 1f]) },
            "Normalization" => o with { Normalization = new([0f, 0f, 0f], [1f, 0f, 1f]) },
            "MaxSamples" => o with { MaxSamples = 0 },
            "StartBatch" => o with { StartBatch = -1 },
            "DecodeThreads" => o with { DecodeThreads = 0 },
            "PrefetchBatches" => o with { PrefetchBatches = 0 },
            _ => o with { Augmentation = new() { MinScale = 0 } },
        };

        var e = Assert.ThrowsAny<ArgumentException>(() => new BatchLoader(Reader(m), o));

        Assert.Equal(option, e.ParamName);
        Assert.StartsWith(option + ":", e.Message);
    }

    [Fact]
    public void Augmentation_params_read_snake_case_json_and_explain_bad_values()
    {
        var p = JsonSerializer.Deserialize<AugmentationParams>("""{"kind": "occluders", "max_occluders": 2, "eval_crop_fraction": 0.875}""", Pipeline.Stages.PipelineJson.Options)!;

        Assert.Equal(AugmentationKind.Occluders, p.Kind);
        Assert.Equal(2, p.MaxOccluders);
        Assert.Equal(0.875, p.EvalCropFraction);
        Assert.Empty(p.Validate());
        Assert.Throws<JsonException>(() => JsonSerializer.Deserialize<AugmentationParams>("""{"kind": "natural", "min_scal": 0.1}""", Pipeline.Stages.PipelineJson.Options));

        var errors = new AugmentationParams { MinScale = 0, MinRatio = 2, MaxRatio = 1, MaxOccluderArea = double.NaN }.Validate("train.augmentation").Select(e => e.ToString()).ToList();

        Assert.StartsWith("train.augmentation.min_scale: must be in (0, 1], got 0.", errors[0]);
        Assert.Contains(errors, e => e.StartsWith("train.augmentation.max_ratio: must be at least min_ratio (2)"));
        Assert.Contains(errors, e => e.StartsWith("train.augmentation.max_occluder_area:"));
        Assert.Equal(3, errors.Count);
    }
}
