using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Security.Cryptography;
using System.Text;
using Azure;
using Azure.Storage;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using Azure.Storage.Sas;
using Pipeline.Stages.Artifacts;

namespace Pipeline.Jobs.Artifacts;

/// <summary>
/// The production artifact store: one Azure Blob Storage container, one block blob per artifact.
/// A put stages the source stream as fixed-size blocks while hashing it, then commits the block list with the sha256
/// in the blob's metadata; uncommitted blocks are invisible, so readers see the old blob or the whole new one, never a
/// part (Put Block List is the commit). Reads are streamed and verified against that sha256.
/// </summary>
public sealed class AzureBlobArtifactStore : IArtifactStore
{
    /// <summary>Blob metadata key holding the lower-case hex sha256 of the committed content.</summary>
    public const string Sha256MetadataKey = "sha256";

    /// <summary>
    /// Pinned service version: the SDK's default (2026-10-06) is newer than Azurite's newest, and everything used
    /// here exists in 2025-11-05 on Azure too (ENVIRONMENT.md).
    /// </summary>
    public const BlobClientOptions.ServiceVersion PinnedServiceVersion = BlobClientOptions.ServiceVersion.V2025_11_05;

    /// <summary>Block size of a put. 50,000 blocks per blob × 4 MiB = 195 GiB per artifact.</summary>
    public const int DefaultBlockSize = 4 * 1024 * 1024;

    private const int MaxBlocks = 50_000;

    private readonly BlobContainerClient _container;
    private readonly int _blockSize;
    private readonly int _maxConcurrentBlocks;
    private readonly ArrayPool<byte> _blocks;
    private volatile bool _containerEnsured;

    /// <summary>A store over <paramref name="containerName"/> in the account of <paramref name="connectionString"/>.</summary>
    public AzureBlobArtifactStore(string connectionString, string containerName, int blockSize = DefaultBlockSize, int maxConcurrentBlocks = 4)
        : this(new BlobServiceClient(connectionString, CreateClientOptions()).GetBlobContainerClient(containerName), blockSize, maxConcurrentBlocks)
    {
    }

    /// <summary>A store over an already-configured container client (e.g. one built with a token credential).</summary>
    public AzureBlobArtifactStore(BlobContainerClient container, int blockSize = DefaultBlockSize, int maxConcurrentBlocks = 4)
    {
        ArgumentNullException.ThrowIfNull(container);
        ArgumentOutOfRangeException.ThrowIfLessThan(blockSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxConcurrentBlocks, 1);
        _container = container;
        _blockSize = blockSize;
        _maxConcurrentBlocks = maxConcurrentBlocks;
        // The store's own pool: the shared one keeps large arrays per thread, and puts continue on whatever thread, so
        // it would allocate fresh 4 MiB blocks on most puts. This keeps at most (concurrency + 1) blocks for reuse.
        _blocks = ArrayPool<byte>.Create(blockSize, maxConcurrentBlocks + 1);
    }

    /// <summary>Client options every client of this store's account should use (the pinned service version).</summary>
    public static BlobClientOptions CreateClientOptions() => new(PinnedServiceVersion);

    public string Kind => "azure-blob";

    /// <summary>The container client (for tests and for the dashboard's diagnostics).</summary>
    public BlobContainerClient Container => _container;

    /// <summary>Creates the container if it does not exist. Puts call this once on their own.</summary>
    public async Task EnsureCreatedAsync(CancellationToken ct = default)
    {
        if (_containerEnsured) return;
        await _container.CreateIfNotExistsAsync(PublicAccessType.None, cancellationToken: ct);
        _containerEnsured = true;
    }

    /// <summary>
    /// Health check for /healthz: succeeds when the account answers and the container exists; otherwise throws
    /// (<see cref="InvalidOperationException"/> for a missing container, <see cref="RequestFailedException"/> for
    /// an account that refuses, an <see cref="Exception"/> of the transport when it cannot be reached).
    /// </summary>
    public async Task PingAsync(CancellationToken ct = default)
    {
        try
        {
            await _container.GetPropertiesAsync(cancellationToken: ct);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            throw new InvalidOperationException($"Blob container '{_container.Name}' does not exist at {_container.Uri}.", e);
        }
    }

    public async Task<ArtifactInfo> PutAsync(string path, Stream content, string mediaType, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(content);
        ArgumentException.ThrowIfNullOrWhiteSpace(mediaType);
        var blob = _container.GetBlockBlobClient(ArtifactPaths.Check(path));
        await EnsureCreatedAsync(ct);

        // One id prefix per put, all ids the same length (the service requires equal lengths within a blob, and a
        // concurrent put of the same path keeps its own blocks apart).
        var putId = Guid.NewGuid().ToString("N");
        var blockIds = new List<string>();
        var inFlight = new List<Task>();
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using var failed = CancellationTokenSource.CreateLinkedTokenSource(ct);
        long bytes = 0;
        try
        {
            while (!failed.IsCancellationRequested)
            {
                var buffer = _blocks.Rent(_blockSize);
                int n;
                try
                {
                    n = await content.ReadAtLeastAsync(buffer.AsMemory(0, _blockSize), _blockSize, throwOnEndOfStream: false, failed.Token);
                }
                catch
                {
                    _blocks.Return(buffer);
                    throw;
                }
                if (n == 0)
                {
                    _blocks.Return(buffer);
                    break;
                }
                if (blockIds.Count == MaxBlocks)
                {
                    _blocks.Return(buffer);
                    throw new InvalidOperationException(
                        $"Artifact '{path}' exceeds {MaxBlocks} blocks of {_blockSize} bytes; use a larger block size.");
                }
                hash.AppendData(buffer, 0, n);
                bytes += n;
                var blockId = Convert.ToBase64String(Encoding.ASCII.GetBytes($"{putId}-{blockIds.Count:D6}"));
                blockIds.Add(blockId);
                inFlight.Add(StageBlockAsync(blob, blockId, buffer, n, failed));
                if (inFlight.Count >= _maxConcurrentBlocks)
                {
                    var done = await Task.WhenAny(inFlight);
                    if (!done.IsCompletedSuccessfully) break; // reported below
                    inFlight.Remove(done);
                }
            }
            await WhenAllReportingTheCause(inFlight);
            ct.ThrowIfCancellationRequested();
        }
        catch
        {
            // Stop the peers and wait for them: their buffers go back to the pool only when they are done. The
            // staged blocks stay uncommitted (invisible) and the service discards them after a week.
            await failed.CancelAsync();
            try { await Task.WhenAll(inFlight); } catch { /* the first failure is the one to report */ }
            throw;
        }

        var sha = Convert.ToHexStringLower(hash.GetHashAndReset());
        await blob.CommitBlockListAsync(blockIds, new CommitBlockListOptions
        {
            HttpHeaders = new BlobHttpHeaders { ContentType = mediaType },
            Metadata = new Dictionary<string, string> { [Sha256MetadataKey] = sha },
        }, ct);
        return new ArtifactInfo(path, bytes, sha, mediaType, blob.Uri);
    }

    /// <summary>
    /// Awaits the block uploads; when some failed, throws the failure that cancelled the others rather than the
    /// cancellations it caused.
    /// </summary>
    private static async Task WhenAllReportingTheCause(List<Task> tasks)
    {
        try
        {
            await Task.WhenAll(tasks);
        }
        catch (OperationCanceledException)
        {
            var cause = tasks.Where(t => t.IsFaulted).Select(t => t.Exception!.InnerException!)
                .FirstOrDefault(e => e is not OperationCanceledException);
            if (cause is not null) ExceptionDispatchInfo.Throw(cause);
            throw;
        }
    }

    private async Task StageBlockAsync(BlockBlobClient blob, string blockId, byte[] buffer, int count, CancellationTokenSource failed)
    {
        try
        {
            using var block = new MemoryStream(buffer, 0, count, writable: false);
            await blob.StageBlockAsync(blockId, block, new BlockBlobStageBlockOptions
            {
                // Content-MD5 per block: the service rejects a block damaged in transit.
                TransferValidation = new UploadTransferValidationOptions { ChecksumAlgorithm = StorageChecksumAlgorithm.MD5 },
            }, failed.Token);
        }
        catch
        {
            await failed.CancelAsync();
            throw;
        }
        finally
        {
            _blocks.Return(buffer);
        }
    }

    public async Task<Stream> OpenReadAsync(string path, string? expectedSha256 = null, CancellationToken ct = default)
    {
        var blob = _container.GetBlobClient(ArtifactPaths.Check(path));
        BlobDownloadStreamingResult download;
        try
        {
            // One request returns the content and the metadata of the same version; the SDK resumes an interrupted
            // body with If-Match on that version's ETag, so a concurrent overwrite fails instead of mixing versions.
            download = await blob.DownloadStreamingAsync(cancellationToken: ct);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            throw new ArtifactNotFoundException(path);
        }
        var recorded = RecordedSha256(download.Details.Metadata);
        if (recorded is null)
        {
            // Not written through a store (no recorded hash): not a committed artifact, as in the filesystem store.
            await download.Content.DisposeAsync();
            download.Dispose();
            throw new ArtifactNotFoundException(path);
        }
        return new Sha256Stream(download.Content, expectedSha256 ?? recorded, path);
    }

    public async Task<ArtifactInfo?> GetInfoAsync(string path, CancellationToken ct = default)
    {
        var blob = _container.GetBlobClient(ArtifactPaths.Check(path));
        try
        {
            BlobProperties p = await blob.GetPropertiesAsync(cancellationToken: ct);
            var sha = RecordedSha256(p.Metadata);
            return sha is null ? null : new ArtifactInfo(path, p.ContentLength, sha, MediaTypeOrDefault(p.ContentType), blob.Uri);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }

    public async IAsyncEnumerable<ArtifactInfo> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken ct = default)
    {
        // The service lists blobs in lexicographic order of their names, which for these ASCII paths is ordinal order.
        var pages = _container.GetBlobsAsync(new GetBlobsOptions { Traits = BlobTraits.Metadata, Prefix = prefix }, ct);
        await using var e = pages.GetAsyncEnumerator(ct);
        while (true)
        {
            try
            {
                if (!await e.MoveNextAsync()) yield break;
            }
            catch (RequestFailedException ex) when (ex.Status == 404)
            {
                yield break; // no container yet: nothing has been put
            }
            var item = e.Current;
            var sha = RecordedSha256(item.Metadata);
            if (sha is null) continue;
            yield return new ArtifactInfo(item.Name, item.Properties.ContentLength ?? 0, sha,
                MediaTypeOrDefault(item.Properties.ContentType), _container.GetBlobClient(item.Name).Uri);
        }
    }

    public async Task<bool> DeleteAsync(string path, CancellationToken ct = default)
    {
        var blob = _container.GetBlobClient(ArtifactPaths.Check(path));
        try
        {
            return await blob.DeleteIfExistsAsync(DeleteSnapshotsOption.IncludeSnapshots, cancellationToken: ct);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return false; // no container
        }
    }

    /// <summary>
    /// A read-only SAS URL valid for <paramref name="lifetime"/> (started a few minutes back, for clock skew). Null when
    /// the client holds no account key to sign with (e.g. a token credential; a user-delegation SAS would need an
    /// asynchronous call).
    /// </summary>
    public Uri? GetDownloadUri(string path, TimeSpan lifetime)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(lifetime, TimeSpan.Zero);
        var blob = _container.GetBlobClient(ArtifactPaths.Check(path));
        if (!blob.CanGenerateSasUri) return null;
        var now = DateTimeOffset.UtcNow;
        var sas = new BlobSasBuilder(BlobSasPermissions.Read, now + lifetime)
        {
            BlobContainerName = _container.Name,
            BlobName = blob.Name,
            Resource = "b",
            StartsOn = now.AddMinutes(-5),
            // HTTPS only against Azure; the emulator speaks plain HTTP.
            Protocol = blob.Uri.Scheme == Uri.UriSchemeHttps ? SasProtocol.Https : SasProtocol.HttpsAndHttp,
        };
        return blob.GenerateSasUri(sas);
    }

    private static string? RecordedSha256(IDictionary<string, string>? metadata) =>
        metadata is not null && metadata.TryGetValue(Sha256MetadataKey, out var sha) && sha.Length == 64 ? sha : null;

    private static string MediaTypeOrDefault(string? contentType) =>
        string.IsNullOrEmpty(contentType) ? "application/octet-stream" : contentType;
}
