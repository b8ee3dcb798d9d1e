using Microsoft.EntityFrameworkCore;
using Pipeline.Jobs.RunStore;
using Pipeline.Stages.Artifacts;

namespace Pipeline.Jobs.Engine;

/// <summary>
/// The fencing token of one attempt: it holds while the run store still has the stage Running at this attempt and the
/// attempt was not given up in this process (a hand-back after the shutdown grace period). Every write, delete and
/// state change of the attempt checks it first, so an attempt that was replaced (paused or partitioned past the
/// heartbeat timeout, then woken) can neither overwrite, delete, checkpoint nor record anything.
/// </summary>
public sealed class StageFence(IDbContextFactory<RunStoreContext> dbs, long stageId, int attempt)
{
    private volatile string? _revoked;

    public long StageId { get; } = stageId;
    public int Attempt { get; } = attempt;

    /// <summary>Gives the attempt up locally: from now on every check fails, whatever the run store says.</summary>
    public void Revoke(string reason) => _revoked ??= reason;

    /// <summary>Throws <see cref="StaleAttemptException"/> unless this attempt still owns the stage.</summary>
    public async Task EnsureOwnedAsync(CancellationToken ct)
    {
        if (_revoked is { } reason) throw new StaleAttemptException(StageId, Attempt, reason);
        await using var db = await dbs.CreateDbContextAsync(ct);
        var owned = await db.Stages.AnyAsync(s => s.Id == StageId && s.Attempt == Attempt && s.Status == StageStatus.Running, ct);
        if (!owned) throw new StaleAttemptException(StageId, Attempt, "the run store no longer has it running at this attempt");
        if (_revoked is { } late) throw new StaleAttemptException(StageId, Attempt, late);
    }
}

/// <summary>An attempt tried to write after it lost the stage; nothing was written. A stop, not a failure.</summary>
public sealed class StaleAttemptException(long stageId, int attempt, string reason)
    : OperationCanceledException($"Stage {stageId} attempt {attempt} is no longer the current attempt ({reason}); its write was refused.");

/// <summary>
/// The artifact store as one attempt sees it: reads pass through; every put and delete first checks the attempt's
/// <see cref="StageFence"/>. The check and the write are two steps, so a writer paused exactly between them can still
/// land one write after losing the stage; the run store records only the current attempt's artifacts (with their
/// sha256), so such a write is never served as the stage's output, and a consumer that reads it finds it corrupt and
/// has the producer re-run (self-healing cache).
/// </summary>
public sealed class FencedArtifactStore(IArtifactStore inner, StageFence fence) : IArtifactStore
{
    public string Kind => inner.Kind;

    public async Task<ArtifactInfo> PutAsync(string path, Stream content, string mediaType, CancellationToken ct = default)
    {
        await fence.EnsureOwnedAsync(ct);
        return await inner.PutAsync(path, content, mediaType, ct);
    }

    public async Task<bool> DeleteAsync(string path, CancellationToken ct = default)
    {
        await fence.EnsureOwnedAsync(ct);
        return await inner.DeleteAsync(path, ct);
    }

    public Task<Stream> OpenReadAsync(string path, string? expectedSha256 = null, CancellationToken ct = default) => inner.OpenReadAsync(path, expectedSha256, ct);

    public Task<ArtifactInfo?> GetInfoAsync(string path, CancellationToken ct = default) => inner.GetInfoAsync(path, ct);

    public IAsyncEnumerable<ArtifactInfo> ListAsync(string prefix, CancellationToken ct = default) => inner.ListAsync(prefix, ct);

    public Uri? GetDownloadUri(string path, TimeSpan lifetime) => inner.GetDownloadUri(path, lifetime);
}
