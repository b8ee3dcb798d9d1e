using System.Text.Json.Nodes;
using Pipeline.Stages.Artifacts;
using Pipeline.Stages.Data;
using Pipeline.Stages.Tests.Data;
using SkiaSharp;

namespace Pipeline.Stages.Tests.Training;

/// <summary>Shards for loader tests: the synthetic source through the real shard stage, or hand-made samples.</summary>
internal static class TestShards
{
    /// <summary>The shard stage on the synthetic source: 3 classes, 70 train images in shards of 16 (16,16,16,16,6).</summary>
    public static async Task<ShardManifest> SyntheticAsync(StageTestHarness h, int trainCount = 70, int imageSize = 24, int perShard = 16)
    {
        var context = h.NewContext();
        var p = ShardStageTests.Parse($$"""{"source": {"num_classes": 3, "image_size": {{imageSize}}, "train_count": {{trainCount}}, "val_count": 10}, "shard_max_samples": {{perShard}}, "threads": 1}""");
        await StageTestHarness.RunAsync(new ShardHandler(), new ShardStage(p, context), CancellationToken.None);
        return await ShardManifest.ReadAsync(h.Store, context.OutputFolder + ShardManifest.FileName);
    }

    /// <summary>Writes the samples as train shards of <paramref name="perShard"/> with the real writer, and a matching manifest.</summary>
    public static async Task<ShardManifest> CustomAsync(StageTestHarness h, IReadOnlyList<string> classes, IReadOnlyList<(string Key, byte[] Image, int Label)> samples, int perShard)
    {
        var folder = $"runs/9/custom-{Guid.NewGuid():N}/";
        var shards = new List<ShardFileInfo>();
        await using (var writer = new ShardWriter("train", h.NewFolder("scratch-" + Guid.NewGuid().ToString("N")), ShardParams.DefaultShardMaxBytes, perShard,
            async (name, local, count, ct) =>
            {
                await using var file = File.OpenRead(local);
                var info = await h.Store.PutAsync(folder + name, file, "application/x-tar", ct);
                shards.Add(new ShardFileInfo(name, info.Sha256, info.Bytes, count));
            }))
        {
            foreach (var (key, image, label) in samples) await writer.AddAsync(key, "png", image, label, CancellationToken.None);
            await writer.CompleteAsync(CancellationToken.None);
        }
        var perClass = classes.Select((_, c) => samples.Count(s => s.Label == c)).ToArray();
        return new ShardManifest(ShardManifest.CurrentFormatVersion, classes, new ShardImageSpec(ShardImageFormat.Png, 3, null, null),
            new ShardSourceInfo("test", null, "hand-made test samples", new JsonObject()), "none", 0,
            new ShardSplitInfo(samples.Count, perClass, shards), new ShardSplitInfo(0, new int[classes.Count], []), new ShardSkipReport(0, []))
        {
            Folder = folder,
        };
    }

    /// <summary>A PNG filled with one colour, with an optional rectangle of another.</summary>
    public static byte[] Png(int width, int height, SKColor fill, SKRectI? rect = null, SKColor rectColor = default)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul));
        bitmap.Erase(fill);
        if (rect is { } r) bitmap.Erase(rectColor, r);
        return ImageCodec.Encode(bitmap, ShardImageFormat.Png, 90);
    }
}

/// <summary>A store whose reads wait for <see cref="Open"/>: lets a test make the consumer start before any data exists.</summary>
internal sealed class GatedStore(IArtifactStore inner) : IArtifactStore
{
    private readonly TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public string Kind => inner.Kind;

    public void Open() => _gate.TrySetResult();

    public async Task<Stream> OpenReadAsync(string path, string? expectedSha256 = null, CancellationToken ct = default)
    {
        await _gate.Task.WaitAsync(ct);
        return await inner.OpenReadAsync(path, expectedSha256, ct);
    }

    public Task<ArtifactInfo> PutAsync(string path, Stream content, string mediaType, CancellationToken ct = default) => inner.PutAsync(path, content, mediaType, ct);
    public Task<ArtifactInfo?> GetInfoAsync(string path, CancellationToken ct = default) => inner.GetInfoAsync(path, ct);
    public IAsyncEnumerable<ArtifactInfo> ListAsync(string prefix, CancellationToken ct = default) => inner.ListAsync(prefix, ct);
    public Task<bool> DeleteAsync(string path, CancellationToken ct = default) => inner.DeleteAsync(path, ct);
    public Uri? GetDownloadUri(string path, TimeSpan lifetime) => inner.GetDownloadUri(path, lifetime);
}
