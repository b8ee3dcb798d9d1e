using System.Formats.Tar;
using System.Runtime.CompilerServices;
using Pipeline.Stages.Artifacts;

namespace Pipeline.Stages.Data;

/// <summary>One WebDataset sample: its key, class index and encoded image (PNG or JPEG, see <see cref="ImageExtension"/>).</summary>
public sealed record ShardSample(string Key, int ClassIndex, byte[] Image, string ImageExtension);

/// <summary>
/// Streams samples out of the shards a <see cref="ShardManifest"/> lists. Each shard is downloaded once into
/// <c>cacheFolder</c> as <c>{sha256}.tar</c>: the download goes to a temp file, is verified against the manifest's
/// sha256 while streaming, and only then renamed into place, so the cache never holds a corrupt shard.
/// </summary>
public sealed class ShardReader(IArtifactStore store, ShardManifest manifest, string cacheFolder)
{
    public ShardManifest Manifest => manifest;

    /// <summary>All samples of a split, shard by shard, in the order the stage wrote them.</summary>
    public async IAsyncEnumerable<ShardSample> ReadAsync(ShardSplitName split, [EnumeratorCancellation] CancellationToken ct = default)
    {
        foreach (var shard in manifest.Split(split).Shards)
            await foreach (var sample in ReadShardAsync(shard, ct)) yield return sample;
    }

    /// <summary>The samples of one shard (lets a trainer choose its own shard order).</summary>
    public async IAsyncEnumerable<ShardSample> ReadShardAsync(ShardFileInfo shard, [EnumeratorCancellation] CancellationToken ct = default)
    {
        var local = await EnsureCachedAsync(shard, ct);
        await using var file = new FileStream(local, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true);
        await using var tar = new TarReader(file);
        string? key = null, extension = null;
        byte[]? image = null;
        int? cls = null;
        while (await tar.GetNextEntryAsync(copyData: false, ct) is { } entry)
        {
            if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile) || entry.DataStream is null) continue;
            var (entryKey, entryExt) = SplitName(entry.Name);
            if (entryKey != key)
            {
                if (key is not null) yield return Complete(shard, key, image, extension, cls);
                (key, image, extension, cls) = (entryKey, null, null, null);
            }
            var data = new byte[entry.Length];
            await entry.DataStream.ReadExactlyAsync(data, ct);
            if (entryExt == "cls")
            {
                cls = int.Parse(System.Text.Encoding.ASCII.GetString(data).Trim(), System.Globalization.CultureInfo.InvariantCulture);
            }
            else if (entryExt is "png" or "jpg" or "jpeg")
            {
                (image, extension) = (data, entryExt);
            }
        }
        if (key is not null) yield return Complete(shard, key, image, extension, cls);
    }

    /// <summary>The local path of a verified copy of the shard, downloading it if the cache lacks it.</summary>
    public async Task<string> EnsureCachedAsync(ShardFileInfo shard, CancellationToken ct = default)
    {
        Directory.CreateDirectory(cacheFolder);
        var path = Path.Combine(cacheFolder, $"{shard.Sha256}.tar");
        if (File.Exists(path))
        {
            // The hash was checked on download; a wrong size means the file was truncated or replaced since.
            if (new FileInfo(path).Length == shard.Bytes) return path;
            File.Delete(path);
        }
        var temp = Path.Combine(cacheFolder, $".{shard.Sha256}.tar.{Guid.NewGuid():N}.partial");
        try
        {
            await using (var source = await store.OpenReadAsync(manifest.ShardPath(shard), shard.Sha256, ct))
            await using (var target = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20, useAsync: true))
            {
                await source.CopyToAsync(target, 1 << 20, ct);
            }
            var bytes = new FileInfo(temp).Length;
            if (bytes != shard.Bytes)
                throw new InvalidDataException($"Shard '{manifest.ShardPath(shard)}' has {bytes} bytes but the manifest says {shard.Bytes}.");
            File.Move(temp, path, overwrite: true);
            return path;
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    private static (string Key, string Extension) SplitName(string name)
    {
        // WebDataset: the key is everything before the first dot of the file name, the extension everything after.
        var slash = name.LastIndexOf('/');
        var dot = name.IndexOf('.', slash + 1);
        return dot < 0 ? (name, "") : (name[..dot], name[(dot + 1)..].ToLowerInvariant());
    }

    private ShardSample Complete(ShardFileInfo shard, string key, byte[]? image, string? extension, int? cls) =>
        image is null || extension is null || cls is null
            ? throw new InvalidDataException($"Sample '{key}' in shard '{manifest.ShardPath(shard)}' lacks its image or .cls entry.")
            : new ShardSample(key, cls.Value, image, extension);
}
