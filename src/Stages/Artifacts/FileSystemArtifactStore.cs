using System.Runtime.CompilerServices;

namespace Pipeline.Stages.Artifacts;

/// <summary>
/// The embedded-mode artifact store: a local folder. A put streams to a hidden temp file in the target folder, then
/// writes the sha256 sidecar and renames the file into place (rename is atomic on one filesystem), so readers see
/// either the old artifact or the whole new one. Sidecar: <c>.{file}.sha256</c> holding "sha256 bytes mediaType".
/// </summary>
public sealed class FileSystemArtifactStore : IArtifactStore
{
    private readonly string _root;

    public FileSystemArtifactStore(string root)
    {
        _root = Path.GetFullPath(root);
        Directory.CreateDirectory(_root);
    }

    public string Kind => "filesystem";

    public string Root => _root;

    public async Task<ArtifactInfo> PutAsync(string path, Stream content, string mediaType, CancellationToken ct = default)
    {
        var full = FullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        var temp = Path.Combine(dir, $".{Path.GetFileName(full)}.tmp-{Guid.NewGuid():N}");
        try
        {
            string sha;
            long bytes;
            await using (var hashing = new Sha256Stream(content, leaveOpen: true))
            await using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
            {
                await hashing.CopyToAsync(file, 1 << 16, ct);
                await file.FlushAsync(ct);
                file.Flush(flushToDisk: true);
                sha = hashing.Sha256;
                bytes = hashing.BytesRead;
            }
            // Sidecar first: a crash between the two writes leaves a sidecar that no longer matches the old file,
            // which reads then report as corrupt rather than silently accepting it.
            await File.WriteAllTextAsync(SidecarPath(full), $"{sha} {bytes} {mediaType}", ct);
            File.Move(temp, full, overwrite: true);
            return new ArtifactInfo(path, bytes, sha, mediaType, new Uri(full));
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    public async Task<Stream> OpenReadAsync(string path, string? expectedSha256 = null, CancellationToken ct = default)
    {
        var info = await GetInfoAsync(path, ct) ?? throw new ArtifactNotFoundException(path);
        var file = new FileStream(FullPath(path), FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true);
        return new Sha256Stream(file, expectedSha256 ?? info.Sha256, path);
    }

    public async Task<ArtifactInfo?> GetInfoAsync(string path, CancellationToken ct = default)
    {
        var full = FullPath(path);
        var sidecar = SidecarPath(full);
        if (!File.Exists(full) || !File.Exists(sidecar)) return null;
        var parts = (await File.ReadAllTextAsync(sidecar, ct)).Split(' ', 3);
        return new ArtifactInfo(path, new FileInfo(full).Length, parts[0], parts.Length > 2 ? parts[2] : "application/octet-stream", new Uri(full));
    }

    public async IAsyncEnumerable<ArtifactInfo> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken ct = default)
    {
        if (!Directory.Exists(_root)) yield break;
        var paths = Directory.EnumerateFiles(_root, "*", SearchOption.AllDirectories)
            .Where(f => !Path.GetFileName(f).StartsWith('.'))
            .Select(f => Path.GetRelativePath(_root, f).Replace('\\', '/'))
            .Where(p => p.StartsWith(prefix, StringComparison.Ordinal))
            .Order(StringComparer.Ordinal);
        foreach (var p in paths)
        {
            var info = await GetInfoAsync(p, ct);
            if (info is not null) yield return info;
        }
    }

    public Task<bool> DeleteAsync(string path, CancellationToken ct = default)
    {
        var full = FullPath(path);
        var existed = File.Exists(full);
        // File.Delete tolerates a missing file but not a missing folder; deleting what is not there is not an error.
        if (Directory.Exists(Path.GetDirectoryName(full)))
        {
            File.Delete(full);
            File.Delete(SidecarPath(full));
        }
        return Task.FromResult(existed);
    }

    public Uri? GetDownloadUri(string path, TimeSpan lifetime) => null;

    /// <summary>The local file behind an artifact (for the dashboard's download route and for tests).</summary>
    public string FullPath(string path) => Path.Combine(_root, ArtifactPaths.Check(path));

    private static string SidecarPath(string full) =>
        Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.sha256");
}
