using System.Text.Json;
using Pipeline.Stages.Artifacts;
using Pipeline.Stages.Data;
using TorchSharp;

namespace Pipeline.Stages.Tests.Data;

public sealed class ShardReaderTests : IDisposable
{
    private readonly StageTestHarness _h = new();

    public void Dispose() => _h.Dispose();

    private async Task<ShardManifest> ShardSynthetic()
    {
        var context = _h.NewContext();
        var p = ShardStageTests.Parse("""{"source": {"num_classes": 3, "image_size": 24, "train_count": 30, "val_count": 9}, "shard_max_samples": 8}""");
        await StageTestHarness.RunAsync(new ShardHandler(), new Pipeline.Stages.Data.ShardStage(p, context), CancellationToken.None);
        return await ShardManifest.ReadAsync(_h.Store, context.OutputFolder + ShardManifest.FileName);
    }

    [Fact]
    public async Task Round_trips_every_sample_with_its_class()
    {
        var m = await ShardSynthetic();
        var cache = _h.NewFolder("cache");
        var reader = new ShardReader(_h.Store, m, cache);

        var train = await reader.ReadAsync(ShardSplitName.Train).ToListAsync();

        Assert.Equal(30, train.Count);
        Assert.Equal(30, train.Select(s => s.Key).Distinct().Count());
        Assert.Equal(m.Train.PerClass, Enumerable.Range(0, 3).Select(c => train.Count(s => s.ClassIndex == c)));
        // Synthetic classes cycle with the source index, which the key carries.
        Assert.All(train, s => Assert.Equal(int.Parse(s.Key["train_".Length..]) % 3, s.ClassIndex));
        Assert.Equal(m.Train.Shards.Select(s => $"{s.Sha256}.tar").Order(), Directory.GetFiles(cache).Select(Path.GetFileName).Order());

        using var tensor = ImageCodec.DecodeTensor(train[0].Image, 3);
        Assert.Equal(new long[] { 3, 24, 24 }, tensor.shape);
        Assert.InRange(tensor.min().ToSingle(), 0f, 1f);
        Assert.InRange(tensor.max().ToSingle(), 0f, 1f);
    }

    [Fact]
    public async Task Cached_shards_are_read_without_the_store()
    {
        var m = await ShardSynthetic();
        var cache = _h.NewFolder("cache");
        var first = await new ShardReader(_h.Store, m, cache).ReadAsync(ShardSplitName.Val).ToListAsync();
        foreach (var shard in m.Val.Shards) await _h.Store.DeleteAsync(m.ShardPath(shard));

        var again = await new ShardReader(_h.Store, m, cache).ReadAsync(ShardSplitName.Val).ToListAsync();

        Assert.Equal(first.Select(s => Convert.ToHexString(s.Image)), again.Select(s => Convert.ToHexString(s.Image)));
    }

    [Fact]
    public async Task Corrupted_shard_is_detected_and_never_cached()
    {
        var m = await ShardSynthetic();
        var shard = m.Train.Shards[1];
        var file = _h.Store.FullPath(m.ShardPath(shard));
        var bytes = File.ReadAllBytes(file);
        bytes[1000] ^= 0x40;
        File.WriteAllBytes(file, bytes);
        var cache = _h.NewFolder("cache");
        var reader = new ShardReader(_h.Store, m, cache);

        await Assert.ThrowsAsync<ArtifactCorruptedException>(() => reader.ReadShardAsync(shard).ToListAsync().AsTask());

        Assert.Empty(Directory.GetFiles(cache));
    }

    [Fact]
    public async Task Manifest_read_rejects_a_wrong_hash()
    {
        var m = await ShardSynthetic();
        var path = m.Folder + ShardManifest.FileName;

        await Assert.ThrowsAsync<ArtifactCorruptedException>(() => ShardManifest.ReadAsync(_h.Store, path, new string('0', 64)));
        var info = await _h.Store.GetInfoAsync(path);
        var again = await ShardManifest.ReadAsync(_h.Store, path, info!.Sha256);
        Assert.Equal(JsonSerializer.Serialize(m.Train, Pipeline.Stages.PipelineJson.Options), JsonSerializer.Serialize(again.Train, Pipeline.Stages.PipelineJson.Options));
    }
}
