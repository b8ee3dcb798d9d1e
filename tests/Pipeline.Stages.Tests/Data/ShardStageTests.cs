using System.Text.Json;
using Pipeline.Stages.Data;
using Pipeline.Stages.Execution;
using SkiaSharp;

namespace Pipeline.Stages.Tests.Data;

public sealed class ShardStageTests : IDisposable
{
    private const string SmallSynthetic = """{"source": {"kind": "synthetic", "num_classes": 4, "image_size": 32, "train_count": 120, "val_count": 40, "occlusion": 0.4, "clutter": 2}, "shard_max_samples": 50""";

    private readonly StageTestHarness _h = new();

    public void Dispose() => _h.Dispose();

    internal static ShardParams Parse(string json) =>
        JsonSerializer.Deserialize<ShardParams>(json, Pipeline.Stages.PipelineJson.Options)!;

    private async Task<(StageResult Result, ShardManifest Manifest, StageContext Context)> Shard(string json, IStageProgress? progress = null)
    {
        var context = _h.NewContext(progress);
        var result = await StageTestHarness.RunAsync(new ShardHandler(), new ShardStage(Parse(json), context), CancellationToken.None);
        var manifest = await ShardManifest.ReadAsync(_h.Store, context.OutputFolder + ShardManifest.FileName);
        return (result, manifest, context);
    }

    private static string[] Hashes(ShardManifest m) => [.. m.Train.Shards.Select(s => s.Sha256), .. m.Val.Shards.Select(s => s.Sha256)];

    [Fact]
    public async Task Same_seed_gives_byte_identical_shards_whatever_the_thread_count()
    {
        var (_, a, ca) = await Shard(SmallSynthetic + """, "seed": 7, "threads": 1}""");
        var (_, b, cb) = await Shard(SmallSynthetic + """, "seed": 7, "threads": 0}""");

        Assert.Equal(Hashes(a), Hashes(b));
        Assert.True(Hashes(a).Length >= 4);
        var manifestA = await _h.Store.GetInfoAsync(ca.OutputFolder + ShardManifest.FileName);
        var manifestB = await _h.Store.GetInfoAsync(cb.OutputFolder + ShardManifest.FileName);
        Assert.Equal(manifestA!.Sha256, manifestB!.Sha256);
    }

    [Fact]
    public async Task Different_seed_gives_different_shards()
    {
        var (_, a, _) = await Shard(SmallSynthetic + """, "seed": 1}""");
        var (_, b, _) = await Shard(SmallSynthetic + """, "seed": 2}""");

        Assert.Empty(Hashes(a).Intersect(Hashes(b)));
    }

    [Fact]
    public async Task Manifest_counts_match_the_shards_and_classes_are_balanced()
    {
        var progress = new RecordingProgress();
        var (result, m, context) = await Shard(SmallSynthetic + "}", progress);

        Assert.Equal(["circle", "square", "triangle", "star"], m.Classes);
        Assert.Equal(120, m.Train.Count);
        Assert.Equal(40, m.Val.Count);
        Assert.Equal([30, 30, 30, 30], m.Train.PerClass);
        Assert.Equal([10, 10, 10, 10], m.Val.PerClass);
        Assert.Equal(120, m.Train.Shards.Sum(s => s.Samples));
        Assert.Equal(["train-000000.tar", "train-000001.tar", "train-000002.tar"], m.Train.Shards.Select(s => s.File));
        Assert.All(m.Train.Shards, s => Assert.True(s.Samples <= 50));
        Assert.Equal(new ShardImageSpec(ShardImageFormat.Png, 3, null, null), m.Image);
        Assert.Equal("synthetic", m.Source.Kind);
        Assert.Equal(0.4, (double)m.Source.Parameters["occlusion"]!);
        Assert.Equal(32, (int)m.Source.Parameters["image_size"]!);
        Assert.Equal(0, m.Skipped.Total);
        Assert.Equal(m.Train.Shards.Count + m.Val.Shards.Count + 1, result.Artifacts.Count);
        Assert.Equal(context.OutputFolder + "manifest.json", result.Artifacts[^1].Path);
        Assert.Equal(1.0, progress.Reports[^1].Fraction);
        Assert.Contains(progress.Reports, r => r.Message?.StartsWith("train ", StringComparison.Ordinal) == true);
    }

    [Fact]
    public async Task Train_shards_mix_classes_and_val_keeps_source_order()
    {
        var (_, m, _) = await Shard(SmallSynthetic + "}");
        var reader = new ShardReader(_h.Store, m, _h.NewFolder("cache"));

        var firstShard = await reader.ReadShardAsync(m.Train.Shards[0]).ToListAsync();
        Assert.True(firstShard.Select(s => s.ClassIndex).Distinct().Count() == 4);
        var val = await reader.ReadAsync(ShardSplitName.Val).ToListAsync();
        Assert.Equal(Enumerable.Range(0, 40).Select(i => $"val_{i:D8}"), val.Select(s => s.Key));
    }

    [Fact]
    public async Task Shards_respect_the_byte_limit()
    {
        var (_, m, _) = await Shard("""{"source": {"train_count": 60, "val_count": 0, "image_size": 48}, "shard_max_bytes": 16384}""");

        Assert.True(m.Train.Shards.Count > 2);
        Assert.All(m.Train.Shards, s => Assert.True(s.Bytes <= 16384, $"{s.File} has {s.Bytes} bytes"));
        Assert.Equal(60, m.Train.Shards.Sum(s => s.Samples));
        Assert.Empty(m.Val.Shards);
    }

    [Fact]
    public async Task Tar_entries_are_normalised_ustar_files()
    {
        var (_, m, context) = await Shard("""{"source": {"train_count": 3, "val_count": 0, "image_size": 16}}""");

        var path = _h.Store.FullPath(context.OutputFolder + m.Train.Shards[0].File);
        using var tar = new System.Formats.Tar.TarReader(File.OpenRead(path));
        var names = new List<string>();
        while (tar.GetNextEntry() is System.Formats.Tar.UstarTarEntry e)
        {
            names.Add(e.Name);
            Assert.Equal(new DateTimeOffset(2000, 1, 1, 0, 0, 0, TimeSpan.Zero), e.ModificationTime);
            Assert.Equal((0, 0, "", ""), (e.Uid, e.Gid, e.UserName, e.GroupName));
            Assert.Equal(Convert.ToInt32("644", 8), (int)e.Mode);
        }
        Assert.Equal(6, names.Count);
        Assert.All(names.Where((_, i) => i % 2 == 1), n => Assert.EndsWith(".cls", n));
        Assert.All(names.Where((_, i) => i % 2 == 0), n => Assert.EndsWith(".png", n));
    }

    [Fact]
    public async Task Corrupt_and_empty_images_in_a_folder_are_skipped_and_listed()
    {
        var root = MakeImageFolder(classes: ["cat", "dog"], perClass: 5, width: 40, height: 30);
        File.WriteAllBytes(Path.Combine(root, "cat", "zero.jpg"), []);
        var valid = File.ReadAllBytes(Path.Combine(root, "dog", "img0.jpg"));
        File.WriteAllBytes(Path.Combine(root, "dog", "truncated.jpg"), valid[..(valid.Length / 3)]);
        File.WriteAllText(Path.Combine(root, "dog", "notes.png"), "not an image");
        File.WriteAllText(Path.Combine(root, "dog", "readme.txt"), "ignored: not an image extension");

        var (_, m, _) = await Shard($$$"""{"source": {"kind": "folder", "path": "{{{root}}}", "val_fraction": 0.2}, "short_side": 16, "max_listed_skips": 2}""");

        Assert.Equal(["cat", "dog"], m.Classes);
        Assert.Equal(10, m.Train.Count + m.Val.Count);
        Assert.Equal(3, m.Skipped.Total);
        Assert.Equal(2, m.Skipped.Listed.Count);
        var all = await Shard($$$"""{"source": {"kind": "folder", "path": "{{{root}}}", "val_fraction": 0.2}, "short_side": 16}""");
        var skipped = all.Manifest.Skipped.Listed.ToDictionary(s => s.Item, s => s.Reason);
        Assert.Contains("empty", skipped["cat/zero.jpg"]);
        Assert.Contains("not a decodable", skipped["dog/truncated.jpg"]);
        Assert.Contains("not a decodable", skipped["dog/notes.png"]);
        Assert.Equal(new ShardImageSpec(ShardImageFormat.Png, 3, 16, null), all.Manifest.Image);
    }

    [Fact]
    public async Task Folder_images_are_resized_to_the_short_side()
    {
        var root = MakeImageFolder(classes: ["a", "b"], perClass: 2, width: 40, height: 30, split: true);

        var (_, m, _) = await Shard($$$"""{"source": {"kind": "folder", "path": "{{{root}}}"}, "short_side": 16, "image_format": "jpg", "jpeg_quality": 80}""");
        var sample = await new ShardReader(_h.Store, m, _h.NewFolder("cache")).ReadAsync(ShardSplitName.Train).FirstAsync();

        Assert.Equal("jpg", sample.ImageExtension);
        var chw = ImageCodec.DecodeChw(sample.Image, 3, out var height, out var width);
        Assert.Equal((16, 21), (height, width));
        Assert.Equal(3 * 16 * 21, chw.Length);
        Assert.Equal((4, 4), (m.Train.Count, m.Val.Count));
    }

    [Fact]
    public async Task Missing_folder_fails_naming_the_path()
    {
        var missing = Path.Combine(_h.Root, "no-such-dataset");

        var e = await Assert.ThrowsAsync<StageInputException>(() => Shard($$$"""{"source": {"kind": "folder", "path": "{{{missing}}}"}}"""));

        Assert.Contains(missing, e.Message);
        Assert.Contains("source.path", e.Message);
    }

    [Fact]
    public async Task Class_folder_without_images_fails_naming_the_folder()
    {
        var root = MakeImageFolder(classes: ["a", "b"], perClass: 2, width: 20, height: 20);
        Directory.CreateDirectory(Path.Combine(root, "empty-class"));

        var e = await Assert.ThrowsAsync<StageInputException>(() => Shard($$$"""{"source": {"kind": "folder", "path": "{{{root}}}"}}"""));

        Assert.Contains(Path.Combine(root, "empty-class"), e.Message);
    }

    [Fact]
    public async Task Class_whose_images_are_all_broken_fails_and_leaves_no_outputs()
    {
        var root = MakeImageFolder(classes: ["a", "b"], perClass: 3, width: 20, height: 20);
        foreach (var f in Directory.GetFiles(Path.Combine(root, "b"))) File.WriteAllBytes(f, [1, 2, 3]);
        var context = _h.NewContext();
        var request = new ShardStage(Parse($$$"""{"source": {"kind": "folder", "path": "{{{root}}}", "val_fraction": 0}, "shard_max_samples": 1}"""), context);

        var e = await Assert.ThrowsAsync<StageInputException>(() => StageTestHarness.RunAsync(new ShardHandler(), request, CancellationToken.None).AsTask());

        Assert.Contains("'b'", e.Message);
        Assert.NotEmpty(context.Outputs); // shards of class 'a' were committed before the check …
        Assert.Empty(await _h.Store.ListAsync(context.OutputFolder).ToListAsync()); // … and deleted on failure
    }

    [Fact]
    public async Task Fashion_mnist_shards_stay_one_channel()
    {
        var folder = _h.NewFolder("fmnist");
        IdxTestFiles.WriteFashionMnist(folder, train: 30, val: 10);

        var (_, m, _) = await Shard($$$"""{"source": {"kind": "fashion_mnist", "path": "{{{folder}}}", "limit_train": 20}}""");

        Assert.Equal("T-shirt/top", m.Classes[0]);
        Assert.Equal((20, 10), (m.Train.Count, m.Val.Count));
        Assert.Equal(1, m.Image.Channels);
        var sample = await new ShardReader(_h.Store, m, _h.NewFolder("cache")).ReadAsync(ShardSplitName.Val).FirstAsync();
        Assert.Equal(0, sample.Image[25]); // PNG IHDR colour type 0: greyscale
        Assert.Equal(IdxTestFiles.Label(0), sample.ClassIndex);
        var pixels = ImageCodec.DecodeChw(sample.Image, 1, out var h, out var w);
        Assert.Equal((28, 28), (h, w));
        Assert.Equal(IdxTestFiles.Pixel(0, 5) / 255f, pixels[5], 5);
    }

    [Theory]
    [InlineData(14)]
    [InlineData(56)]
    public async Task Grey_images_are_resized_and_stay_grey(int shortSide)
    {
        var folder = _h.NewFolder("fmnist");
        IdxTestFiles.WriteFashionMnist(folder, train: 10, val: 2);

        var (_, m, _) = await Shard($$$"""{"source": {"kind": "fashion_mnist", "path": "{{{folder}}}"}, "short_side": {{{shortSide}}}}""");
        var sample = await new ShardReader(_h.Store, m, _h.NewFolder("cache")).ReadAsync(ShardSplitName.Train).FirstAsync();

        Assert.Equal(0, sample.Image[25]);
        ImageCodec.DecodeChw(sample.Image, 1, out var h, out var w);
        Assert.Equal((shortSide, shortSide), (h, w));
        Assert.Equal(new ShardImageSpec(ShardImageFormat.Png, 1, shortSide, null), m.Image);
    }

    [Fact]
    public async Task Cancellation_leaves_no_outputs()
    {
        using var cts = new CancellationTokenSource();
        var context = _h.NewContext(new CancelOnReport(cts));
        var request = new ShardStage(Parse("""{"source": {"train_count": 2000, "val_count": 0, "image_size": 16}, "shard_max_samples": 100}"""), context);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => StageTestHarness.RunAsync(new ShardHandler(), request, cts.Token).AsTask());

        Assert.Empty(await _h.Store.ListAsync(context.OutputFolder).ToListAsync());
    }

    private sealed class CancelOnReport(CancellationTokenSource cts) : IStageProgress
    {
        private int _reports;

        public void Report(double fraction, string? message = null)
        {
            if (++_reports == 3) cts.Cancel();
        }

        public void Metric(string name, double value, long? step = null) { }
    }

    [Fact]
    public async Task Synthetic_images_are_rgb_pngs()
    {
        var (_, m, _) = await Shard("""{"source": {"train_count": 2, "val_count": 0, "image_size": 24}}""");
        var sample = await new ShardReader(_h.Store, m, _h.NewFolder("cache")).ReadAsync(ShardSplitName.Train).FirstAsync();

        Assert.Equal(2, sample.Image[25]); // PNG IHDR colour type 2: RGB without alpha
    }

    [Fact]
    public async Task Real_fashion_mnist_is_sharded_when_installed()
    {
        if (!File.Exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")) return;

        var (_, m, _) = await Shard("""{"source": {"kind": "fashion_mnist", "limit_train": 300, "limit_val": 100}}""");

        Assert.Equal((300, 100), (m.Train.Count, m.Val.Count));
        Assert.Equal(10, m.Classes.Count);
        Assert.Equal("/usr/share/datasets/fashion-mnist", m.Source.Path);
    }

    [Fact]
    public async Task Missing_idx_file_fails_naming_the_file()
    {
        var folder = _h.NewFolder("fmnist-broken");
        IdxTestFiles.WriteFashionMnist(folder, train: 5, val: 5);
        File.Delete(Path.Combine(folder, "t10k-labels-idx1-ubyte.gz"));

        var e = await Assert.ThrowsAsync<StageInputException>(() => Shard($$$"""{"source": {"kind": "fashion_mnist", "path": "{{{folder}}}"}}"""));

        Assert.Contains(Path.Combine(folder, "t10k-labels-idx1-ubyte.gz"), e.Message);
    }

    /// <summary>JPEGs of solid, class-dependent colours in root/{class}/ (or root/{train,val}/{class}/).</summary>
    private string MakeImageFolder(string[] classes, int perClass, int width, int height, bool split = false)
    {
        var root = _h.NewFolder("images-" + Guid.NewGuid().ToString("N")[..6]);
        foreach (var part in split ? new[] { "train", "val" } : [""])
        {
            for (var c = 0; c < classes.Length; c++)
            {
                var dir = Path.Combine(root, part, classes[c]);
                Directory.CreateDirectory(dir);
                for (var i = 0; i < perClass; i++)
                {
                    using var bitmap = new SKBitmap(width, height);
                    bitmap.Erase(new SKColor((byte)(60 * c), (byte)(20 * i), 128));
                    using var data = bitmap.Encode(SKEncodedImageFormat.Jpeg, 90);
                    File.WriteAllBytes(Path.Combine(dir, $"img{i}.jpg"), data.ToArray());
                }
            }
        }
        return root;
    }
}
