using System.Buffers.Binary;
using Microsoft.EntityFrameworkCore;

namespace Pipeline.Jobs.RunStore;

/// <summary>Locks in the run store that serialise a read-then-write between processes.</summary>
public static class RunStoreLocks
{
    /// <summary>
    /// Takes a PostgreSQL transaction-scoped advisory lock named by a hex key (a content key), released at commit.
    /// SQLite serialises writers itself, and the embedded store serves one process, whose callers serialise in memory.
    /// </summary>
    public static async Task LockAsync(RunStoreContext db, string hexKey, CancellationToken ct)
    {
        if (!db.Database.IsNpgsql()) return;
        var id = BinaryPrimitives.ReadInt64BigEndian(Convert.FromHexString(hexKey[..16]));
        await db.Database.ExecuteSqlAsync($"SELECT pg_advisory_xact_lock({id})", ct);
    }
}
