using System.Security.Cryptography;
using Pipeline.Stages.Artifacts;

namespace Pipeline.Jobs.Tests.Artifacts;

/// <summary>
/// Runs alone (no other test class in parallel), so the allocation measure of the streaming test sees only the put.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ArtifactStoreCollection
{
    public const string Name = "Artifact stores";
}

/// <summary>
/// What every <see cref="IArtifactStore"/> must do, run against each implementation (one subclass per store).
/// </summary>
public abstract class ArtifactStoreContractTests : IAsyncLifetime
{
    private const int MiB = 1024 * 1024;

    private IArtifactStore? _store;

    protected IArtifactStore Store => _store ?? throw new InvalidOperationException("store not created yet");

    /// <summary>A fresh, empty store for one test.</summary>
    protected abstract Task<IArtifactStore> CreateStoreAsync();

    /// <summary>Replaces the stored bytes of <paramref name="path"/> without going through the store.</summary>
    protected abstract Task CorruptBehindTheStoreAsync(string path, byte[] otherBytes);

    protected abstract Task DeleteStoreAsync();

    public async Task InitializeAsync() => _store = await CreateStoreAsync();

    public async Task DisposeAsync()
    {
        if (_store is not null) await DeleteStoreAsync();
    }

    [Fact]
    public async Task Put_then_read_round_trips_the_bytes_and_records_their_sha256()
    {
        var bytes = GeneratedStream.Bytes(5 * MiB + 123, seed: 1);
        var path = "runs/1/train-0123abcd/model.safetensors";

        var put = await Store.PutAsync(path, new MemoryStream(bytes), "application/octet-stream");

        var sha = Convert.ToHexStringLower(SHA256.HashData(bytes));
        Assert.Equal(sha, put.Sha256);
        Assert.Equal(bytes.Length, put.Bytes);
        var info = await Store.GetInfoAsync(path);
        Assert.NotNull(info);
        Assert.Equal(sha, info.Sha256);
        Assert.Equal(bytes.Length, info.Bytes);
        Assert.Equal("application/octet-stream", info.MediaType);
        Assert.Equal(bytes, await ReadAllAsync(path));
    }

    [Fact]
    public async Task An_empty_artifact_round_trips()
    {
        var put = await Store.PutAsync("runs/1/report-0123abcd/empty.txt", new MemoryStream(), "text/plain");

        Assert.Equal(0, put.Bytes);
        Assert.Equal(Sha256Stream.Hex([]), put.Sha256);
        Assert.Empty(await ReadAllAsync("runs/1/report-0123abcd/empty.txt"));
    }

    [Fact]
    public async Task A_20_MB_non_seekable_stream_is_uploaded_without_buffering_it_whole()
    {
        const long size = 20L * MiB;
        var path = "runs/2/shard-89abcdef/train-000000.tar";
        // Warm up: the first put fills connection pools, JIT and the array pool the put borrows block buffers from.
        await Store.PutAsync("runs/2/warm-up/w.bin", new GeneratedStream(size, seed: 9), "application/octet-stream");
        string expectedSha;
        await using (var reference = new GeneratedStream(size, seed: 2)) expectedSha = await Sha256Stream.HashAsync(reference);

        var before = GC.GetTotalAllocatedBytes(precise: true);
        var put = await Store.PutAsync(path, new GeneratedStream(size, seed: 2), "application/x-tar");
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - before;

        Assert.Equal(size, put.Bytes);
        Assert.Equal(expectedSha, put.Sha256);
        // Whole-file buffering would allocate ≥ 20 MiB; a streaming put reuses its few block buffers (or the 64 KiB copy buffer).
        Assert.True(allocated < size / 4, $"the put allocated {allocated / 1024} KiB for a {size / MiB} MiB artifact: it buffers the stream");
        await using var read = await Store.OpenReadAsync(path);
        Assert.Equal(expectedSha, await Sha256Stream.HashAsync(read));
    }

    [Fact]
    public async Task Overwriting_replaces_the_bytes_and_the_recorded_sha256()
    {
        var path = "runs/3/train-0123abcd/metrics.json";
        await Store.PutAsync(path, new MemoryStream("{\"loss\":1.0}"u8.ToArray()), "application/json");

        var second = "{\"loss\":0.5,\"acc\":0.8}"u8.ToArray();
        var put = await Store.PutAsync(path, new MemoryStream(second), "application/json");

        Assert.Equal(Sha256Stream.Hex(second), put.Sha256);
        Assert.Equal(Sha256Stream.Hex(second), (await Store.GetInfoAsync(path))?.Sha256);
        Assert.Equal(second, await ReadAllAsync(path));
        Assert.Single(await ListAsync("runs/3/"));
    }

    [Fact]
    public async Task List_returns_only_the_prefix_ordered_by_path()
    {
        foreach (var p in new[] { "runs/1/train-aaaaaaaa/z.json", "runs/10/shard-bbbbbbbb/a.tar", "runs/1/shard-cccccccc/b.tar",
                     "runs/1/shard-cccccccc/a.tar", "runs/2/report-dddddddd/report.md" })
        {
            await Store.PutAsync(p, new MemoryStream("x"u8.ToArray()), "text/plain");
        }

        var listed = await ListAsync("runs/1/");

        Assert.Equal(["runs/1/shard-cccccccc/a.tar", "runs/1/shard-cccccccc/b.tar", "runs/1/train-aaaaaaaa/z.json"],
            listed.Select(i => i.Path));
        Assert.All(listed, i => Assert.Equal(Sha256Stream.Hex("x"u8), i.Sha256));
        Assert.All(listed, i => Assert.Equal(1, i.Bytes));
        Assert.Equal(5, (await ListAsync("runs/")).Count);
        Assert.Empty(await ListAsync("runs/3/"));
    }

    [Fact]
    public async Task Delete_removes_the_artifact_and_reports_whether_it_existed()
    {
        var path = "runs/4/train-0123abcd/curve.csv";
        await Store.PutAsync(path, new MemoryStream("step,loss\n1,2\n"u8.ToArray()), "text/csv");

        Assert.True(await Store.DeleteAsync(path));
        Assert.False(await Store.DeleteAsync(path));
        Assert.Null(await Store.GetInfoAsync(path));
        Assert.Empty(await ListAsync("runs/4/"));
        await Assert.ThrowsAsync<ArtifactNotFoundException>(() => Store.OpenReadAsync(path));
    }

    [Fact]
    public async Task A_missing_artifact_has_no_info_and_cannot_be_opened()
    {
        Assert.Null(await Store.GetInfoAsync("runs/5/none-00000000/nothing.bin"));
        await Assert.ThrowsAsync<ArtifactNotFoundException>(() => Store.OpenReadAsync("runs/5/none-00000000/nothing.bin"));
    }

    [Fact]
    public async Task Bytes_changed_behind_the_store_are_reported_as_corrupt_on_read()
    {
        var path = "runs/6/train-0123abcd/model.safetensors";
        var bytes = GeneratedStream.Bytes(MiB, seed: 6);
        await Store.PutAsync(path, new MemoryStream(bytes), "application/octet-stream");
        var flipped = (byte[])bytes.Clone();
        flipped[bytes.Length / 2] ^= 0x40;

        await CorruptBehindTheStoreAsync(path, flipped);

        var e = await Assert.ThrowsAsync<ArtifactCorruptedException>(() => ReadAllAsync(path));
        Assert.Equal(path, e.ArtifactPath);
    }

    [Fact]
    public async Task A_read_against_a_wrong_expected_sha256_is_reported_as_corrupt()
    {
        var path = "runs/7/shard-0123abcd/manifest.json";
        await Store.PutAsync(path, new MemoryStream("{}"u8.ToArray()), "application/json");

        await Assert.ThrowsAsync<ArtifactCorruptedException>(() => ReadAllAsync(path, expectedSha256: Sha256Stream.Hex("[]"u8)));
        Assert.Equal("{}"u8.ToArray(), await ReadAllAsync(path, expectedSha256: Sha256Stream.Hex("{}"u8)));
    }

    [Fact]
    public async Task A_put_whose_source_fails_midway_leaves_nothing_new_visible()
    {
        var path = "runs/8/train-0123abcd/checkpoint-000100.safetensors";
        var fresh = "runs/8/train-0123abcd/checkpoint-000200.safetensors";
        var old = GeneratedStream.Bytes(MiB, seed: 8);
        await Store.PutAsync(path, new MemoryStream(old), "application/octet-stream");

        // Past the first 4 MiB block, so some of the new content has already left for the store.
        await Assert.ThrowsAsync<IOException>(() =>
            Store.PutAsync(path, new GeneratedStream(12 * MiB, seed: 80, failAfter: 9 * MiB), "application/octet-stream"));
        await Assert.ThrowsAsync<IOException>(() =>
            Store.PutAsync(fresh, new GeneratedStream(12 * MiB, seed: 81, failAfter: 9 * MiB), "application/octet-stream"));

        Assert.Equal(Sha256Stream.Hex(old), (await Store.GetInfoAsync(path))?.Sha256);
        Assert.Equal(old, await ReadAllAsync(path));
        Assert.Null(await Store.GetInfoAsync(fresh));
        Assert.Equal([path], (await ListAsync("runs/8/")).Select(i => i.Path));
    }

    [Fact]
    public async Task A_put_cancelled_midway_leaves_the_previous_version()
    {
        var path = "runs/9/train-0123abcd/checkpoint-last.safetensors";
        var old = GeneratedStream.Bytes(1000, seed: 9);
        await Store.PutAsync(path, new MemoryStream(old), "application/octet-stream");
        using var cts = new CancellationTokenSource();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Store.PutAsync(path,
            new GeneratedStream(12 * MiB, seed: 90, onRead: at => { if (at > 6 * MiB) cts.Cancel(); }),
            "application/octet-stream", cts.Token));

        Assert.Equal(old, await ReadAllAsync(path));
        Assert.Equal([path], (await ListAsync("runs/9/")).Select(i => i.Path));
    }

    [Fact]
    public async Task Paths_that_escape_the_layout_are_refused()
    {
        await Assert.ThrowsAsync<ArgumentException>(() => Store.PutAsync("../outside.bin", new MemoryStream(), "text/plain"));
        await Assert.ThrowsAsync<ArgumentException>(() => Store.PutAsync("/rooted.bin", new MemoryStream(), "text/plain"));
    }

    protected async Task<byte[]> ReadAllAsync(string path, string? expectedSha256 = null)
    {
        await using var s = await Store.OpenReadAsync(path, expectedSha256);
        using var copy = new MemoryStream();
        await s.CopyToAsync(copy);
        return copy.ToArray();
    }

    protected async Task<List<ArtifactInfo>> ListAsync(string prefix)
    {
        var list = new List<ArtifactInfo>();
        await foreach (var i in Store.ListAsync(prefix)) list.Add(i);
        return list;
    }
}
