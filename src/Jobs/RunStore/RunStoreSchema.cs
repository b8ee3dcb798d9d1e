using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Storage;

namespace Pipeline.Jobs.RunStore;

/// <summary>
/// Creates the run store's tables at start-up when they are absent and checks the schema version. EF migrations would
/// need one migration set per provider; with one model for PostgreSQL and SQLite, the store creates its tables from
/// the model and records a version, and later versions add numbered upgrade steps here.
/// </summary>
public static class RunStoreSchema
{
    public const int CurrentVersion = 3;

    /// <summary>Upgrade steps: step v takes a store at version v − 1 to version v (PostgreSQL text, SQLite text).</summary>
    private static readonly (int Version, string Postgres, string Sqlite)[] Upgrades =
    [
        (2, "ALTER TABLE pipeline.runs ADD COLUMN \"OverridesJson\" text", "ALTER TABLE runs ADD COLUMN \"OverridesJson\" TEXT"),
        // Schedules by preset (no RunSpec of their own), with overrides and a misfire policy. SQLite cannot drop a NOT NULL,
        // and nothing wrote the table before version 3, so it is made anew there.
        (3, """
            ALTER TABLE pipeline.schedules ALTER COLUMN "SpecJson" DROP NOT NULL;
            ALTER TABLE pipeline.schedules ADD COLUMN "Preset" text, ADD COLUMN "OverridesJson" text,
                ADD COLUMN "Misfire" character varying(8) NOT NULL DEFAULT 'Once';
            """, """
            DROP TABLE schedules;
            CREATE TABLE "schedules" (
                "Id" INTEGER NOT NULL CONSTRAINT "PK_schedules" PRIMARY KEY AUTOINCREMENT,
                "Name" TEXT NOT NULL, "Cron" TEXT NOT NULL, "TimeZone" TEXT NOT NULL, "Preset" TEXT NULL, "SpecJson" TEXT NULL,
                "OverridesJson" TEXT NULL, "Misfire" TEXT NOT NULL DEFAULT 'Once', "Enabled" INTEGER NOT NULL, "CreatedAt" TEXT NOT NULL,
                "LastRunId" INTEGER NULL);
            CREATE UNIQUE INDEX "IX_schedules_Name" ON "schedules" ("Name");
            """),
    ];

    // Any fixed number: serialises schema creation between processes starting at once on one PostgreSQL database.
    private const long AdvisoryLockKey = 0x436F6E76524E4E;

    public static async Task EnsureAsync(RunStoreContext db, CancellationToken ct = default)
    {
        await db.Database.OpenConnectionAsync(ct);
        try
        {
            var npgsql = db.Database.IsNpgsql();
            if (npgsql) await db.Database.ExecuteSqlRawAsync($"SELECT pg_advisory_lock({AdvisoryLockKey})", ct);
            else
            {
                await db.Database.ExecuteSqlRawAsync("PRAGMA journal_mode=WAL;", ct);
            }
            try
            {
                var exists = npgsql
                    ? await db.Database.SqlQueryRaw<bool>("SELECT to_regclass('pipeline.schema_version') IS NOT NULL AS \"Value\"").SingleAsync(ct)
                    : await db.Database.SqlQueryRaw<long>("SELECT count(*) AS \"Value\" FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").SingleAsync(ct) > 0;
                if (!exists)
                {
                    await db.GetService<IRelationalDatabaseCreator>().CreateTablesAsync(ct);
                    db.SchemaVersions.Add(new SchemaVersion { Version = CurrentVersion, AppliedAt = DateTime.UtcNow });
                    await db.SaveChangesAsync(ct);
                    return;
                }
                var version = await db.SchemaVersions.MaxAsync(v => v.Version, ct);
                if (version > CurrentVersion)
                {
                    throw new InvalidOperationException(
                        $"The run store's schema is version {version}, newer than this pipeline's ({CurrentVersion}). Upgrade the pipeline before pointing it at this database.");
                }
                foreach (var step in Upgrades.Where(u => u.Version > version))
                {
                    // PostgreSQL holds the advisory lock; on SQLite the transaction takes the write lock first (BEGIN
                    // IMMEDIATE), so a second process starting at the same moment sees the step done and skips it.
                    await using var tx = await db.Database.BeginTransactionAsync(ct);
                    if (await db.SchemaVersions.MaxAsync(v => v.Version, ct) >= step.Version) continue;
                    await db.Database.ExecuteSqlRawAsync(npgsql ? step.Postgres : step.Sqlite, ct);
                    db.SchemaVersions.Add(new SchemaVersion { Version = step.Version, AppliedAt = DateTime.UtcNow });
                    await db.SaveChangesAsync(ct);
                    await tx.CommitAsync(ct);
                }
            }
            finally
            {
                if (npgsql) await db.Database.ExecuteSqlRawAsync($"SELECT pg_advisory_unlock({AdvisoryLockKey})", ct);
            }
        }
        finally
        {
            await db.Database.CloseConnectionAsync();
        }
    }
}
