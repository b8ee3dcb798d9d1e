using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Pipeline.Stages.Artifacts;
using Pipeline.Stages.Execution;
using SkiaSharp;

namespace Pipeline.Stages.Data;

/// <summary>One benchmark case: the median over repeats of a whole shard stage run (encode, tar, commit, manifest).</summary>
public sealed record ShardBenchmarkResult(string Name, string Detail, int Images, int Repeats, double MedianSeconds, double ImagesPerSecond, int Threads);

/// <summary>
/// Measures sharding throughput on this machine: (a) the synthetic set rendered and PNG-encoded, (b) a folder of
/// JPEGs (generated first, not timed) decoded, resized and re-encoded as PNG, (c) the same re-encoded as JPEG.
/// Everything runs in a temp folder that is deleted.
/// </summary>
public static class ShardBenchmark
{
    public static async Task<IReadOnlyList<ShardBenchmarkResult>> RunAsync(
        int syntheticImages = 2000, int jpegImages = 1000, int repeats = 3, string? workFolder = null,
        ILogger? logger = null, CancellationToken ct = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(repeats, 1);
        logger ??= NullLogger.Instance;
        var root = Path.Combine(workFolder ?? Path.GetTempPath(), $"shard-bench-{Guid.NewGuid():N}");
        Directory.CreateDirectory(root);
        try
        {
            var results = new List<ShardBenchmarkResult>();
            var synthetic = new ShardParams { Source = new() { TrainCount = syntheticImages, ValCount = 0, ImageSize = 64 } };
            results.Add(await MeasureAsync("synthetic", $"{syntheticImages} occluded objects, 64 px, PNG", synthetic, root, repeats, logger, ct));

            var folder = Path.Combine(root, "jpegs");
            WriteJpegFolder(folder, jpegImages, classes: 10);
            var jpegs = new ShardParams
            {
                Source = new() { Kind = ShardSourceKind.Folder, Path = folder, ValFraction = 0.1 },
                ShortSide = 128,
            };
            results.Add(await MeasureAsync("folder-jpeg", $"{jpegImages} JPEGs 256x192 -> short side 128, PNG", jpegs, root, repeats, logger, ct));
            var jpegToJpeg = jpegs with { ImageFormat = ShardImageFormat.Jpg };
            results.Add(await MeasureAsync("folder-jpeg-to-jpg", $"{jpegImages} JPEGs 256x192 -> short side 128, JPEG q90", jpegToJpeg, root, repeats, logger, ct));
            return results;
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private static async Task<ShardBenchmarkResult> MeasureAsync(
        string name, string detail, ShardParams p, string root, int repeats, ILogger logger, CancellationToken ct)
    {
        var seconds = new List<double>();
        var images = 0;
        for (var r = 0; r < repeats; r++)
        {
            var runFolder = Path.Combine(root, $"{name}-{r}");
            var context = new StageContext
            {
                RunId = 0,
                StageId = r,
                StageName = "shard-bench",
                Attempt = 1,
                Store = new FileSystemArtifactStore(Path.Combine(runFolder, "store")),
                OutputFolder = "bench/",
                StateFolder = "bench-state/",
                Inputs = new Dictionary<string, IReadOnlyList<ArtifactInfo>>(),
                Progress = NullStageProgress.Instance,
                Logger = NullLogger.Instance,
                ScratchFolder = Directory.CreateDirectory(Path.Combine(runFolder, "scratch")).FullName,
            };
            var clock = Stopwatch.StartNew();
            var result = await new ShardHandler().Handle(new ShardStage(p, context), ct);
            seconds.Add(clock.Elapsed.TotalSeconds);
            images = (int)result.Summary!["train"]! + (int)result.Summary["val"]!;
            Directory.Delete(runFolder, recursive: true);
        }
        seconds.Sort();
        var median = seconds[seconds.Count / 2];
        var outcome = new ShardBenchmarkResult(name, detail, images, repeats, median, images / median, Environment.ProcessorCount);
        logger.LogInformation("Shard benchmark {Name}: {Images} images in {Seconds:F2} s median = {ImagesPerSecond:F0} images/s on {Threads} threads",
            name, images, median, outcome.ImagesPerSecond, outcome.Threads);
        return outcome;
    }

    /// <summary>Synthetic scenes cropped to 256x192 and saved as JPEG (quality 90) in one folder per class.</summary>
    private static void WriteJpegFolder(string folder, int count, int classes)
    {
        var scenes = new SyntheticOccludedObjects(classes, 256, count, 0, 0.3, 3, seed: 1, minContrast: 0);
        Parallel.For(0, count, i =>
        {
            using var scene = scenes.Render(ShardSplitName.Train, i);
            using var subset = new SKBitmap();
            scene.ExtractSubset(subset, new SKRectI(0, 32, 256, 224));
            var dir = Path.Combine(folder, $"class{scenes.ClassOf(ShardSplitName.Train, i):D2}");
            Directory.CreateDirectory(dir);
            File.WriteAllBytes(Path.Combine(dir, $"{i:D6}.jpg"), ImageCodec.Encode(subset, ShardImageFormat.Jpg, 90));
        });
    }
}
