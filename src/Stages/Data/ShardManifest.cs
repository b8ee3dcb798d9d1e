using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Pipeline.Stages.Artifacts;

namespace Pipeline.Stages.Data;

/// <summary>
/// <c>manifest.json</c> of a shard stage: what the shards hold and how they were made. Shard file names are relative to
/// the manifest's folder. The stage writes it last, so a manifest only exists for a complete set of shards.
/// </summary>
public sealed record ShardManifest(
    int FormatVersion,
    IReadOnlyList<string> Classes,
    ShardImageSpec Image,
    ShardSourceInfo Source,
    string Preprocessing,
    long Seed,
    ShardSplitInfo Train,
    ShardSplitInfo Val,
    ShardSkipReport Skipped)
{
    public const int CurrentFormatVersion = 1;
    public const string FileName = "manifest.json";

    /// <summary>Store folder the manifest was read from (ending in '/'); set by <see cref="ReadAsync"/>.</summary>
    [JsonIgnore]
    public string Folder { get; init; } = "";

    public ShardSplitInfo Split(ShardSplitName split) => split == ShardSplitName.Train ? Train : Val;

    /// <summary>The store path of a shard listed in this manifest.</summary>
    public string ShardPath(ShardFileInfo shard) => Folder + shard.File;

    /// <summary>Reads and checks a manifest; the stream is verified against <paramref name="sha256"/> (or the store's record).</summary>
    public static async Task<ShardManifest> ReadAsync(IArtifactStore store, string path, string? sha256 = null, CancellationToken ct = default)
    {
        // Read to the end first: the store verifies the hash only when the stream is exhausted.
        using var buffer = new MemoryStream();
        await using (var s = await store.OpenReadAsync(path, sha256, ct)) await s.CopyToAsync(buffer, ct);
        buffer.Position = 0;
        ShardManifest manifest;
        try
        {
            manifest = await JsonSerializer.DeserializeAsync<ShardManifest>(buffer, PipelineJson.Options, ct)
                ?? throw new InvalidDataException($"Shard manifest '{path}' is empty (null).");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"Shard manifest '{path}' is not valid: {e.Message}", e);
        }
        if (manifest.FormatVersion != CurrentFormatVersion)
            throw new InvalidDataException($"Shard manifest '{path}' has format version {manifest.FormatVersion}; this code reads version {CurrentFormatVersion}. Re-run the shard stage.");
        var slash = path.LastIndexOf('/');
        return manifest with { Folder = slash < 0 ? "" : path[..(slash + 1)] };
    }

    public byte[] ToJsonBytes() => JsonSerializer.SerializeToUtf8Bytes(this, PipelineJson.Options);
}

/// <summary>How images are stored: format, channel count (1 grey, 3 RGB), and the short side they were resized to.</summary>
public sealed record ShardImageSpec(ShardImageFormat Format, int Channels, int? ShortSide, int? JpegQuality);

/// <summary>Where the data came from: kind, path (when it has one), a readable description and the source params.</summary>
public sealed record ShardSourceInfo(string Kind, string? Path, string Description, JsonObject Parameters);

/// <summary>One split: its sample count, count per class (in class-index order), and its shards in reading order.</summary>
public sealed record ShardSplitInfo(int Count, IReadOnlyList<int> PerClass, IReadOnlyList<ShardFileInfo> Shards);

public sealed record ShardFileInfo(string File, string Sha256, long Bytes, int Samples);

/// <summary>All skipped inputs are counted; the first few are listed with the reason.</summary>
public sealed record ShardSkipReport(int Total, IReadOnlyList<SkippedItem> Listed);

public sealed record SkippedItem(string Split, string Item, string Reason);
