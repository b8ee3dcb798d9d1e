namespace Pipeline.Stages.Artifacts;

/// <summary>
/// The one port through which stages read and write files. Paths are store-relative, '/'-separated
/// (<c>runs/{runId}/{stageKind}-{stageKey8}/{file}</c>, see <see cref="ArtifactPaths"/>).
/// </summary>
public interface IArtifactStore
{
    /// <summary>A short name for logs and health checks ("filesystem", "azure-blob").</summary>
    string Kind { get; }

    /// <summary>
    /// Streams <paramref name="content"/> to <paramref name="path"/>. Nothing is visible under that path until the whole
    /// stream has been written and its sha256 recorded beside it; a failure or cancellation leaves the previous state.
    /// </summary>
    Task<ArtifactInfo> PutAsync(string path, Stream content, string mediaType, CancellationToken ct = default);

    /// <summary>
    /// Opens the artifact for streaming. The returned stream throws <see cref="ArtifactCorruptedException"/> at its end
    /// when the bytes read do not hash to <paramref name="expectedSha256"/> (or, when null, to the sha256 the store
    /// recorded at commit).
    /// </summary>
    Task<Stream> OpenReadAsync(string path, string? expectedSha256 = null, CancellationToken ct = default);

    /// <summary>The committed artifact's size and recorded sha256, or null when it does not exist.</summary>
    Task<ArtifactInfo?> GetInfoAsync(string path, CancellationToken ct = default);

    /// <summary>Committed artifacts whose path starts with <paramref name="prefix"/>, ordered by path.</summary>
    IAsyncEnumerable<ArtifactInfo> ListAsync(string prefix, CancellationToken ct = default);

    /// <summary>Deletes the artifact if it exists; returns whether it did.</summary>
    Task<bool> DeleteAsync(string path, CancellationToken ct = default);

    /// <summary>
    /// A URL a client can download the artifact from: a short-lived SAS URL on Azure, or null where the store has no
    /// URL of its own (the filesystem store; the dashboard then serves the file through its own route).
    /// </summary>
    Uri? GetDownloadUri(string path, TimeSpan lifetime);
}

/// <summary>A committed artifact: where it is, how large, and its sha256 (lower-case hex).</summary>
public sealed record ArtifactInfo(string Path, long Bytes, string Sha256, string MediaType, Uri Uri);

/// <summary>The bytes read back do not match the recorded sha256.</summary>
public sealed class ArtifactCorruptedException(string path, string expected, string actual)
    : IOException($"Artifact '{path}' is corrupt: sha256 {actual} does not match the recorded {expected}.")
{
    public string ArtifactPath { get; } = path;
}

/// <summary>The artifact does not exist in the store.</summary>
public sealed class ArtifactNotFoundException(string path)
    : FileNotFoundException($"Artifact '{path}' does not exist in the artifact store.", path);
