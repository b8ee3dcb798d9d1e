using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using Pipeline.Jobs.Engine;
using Pipeline.Jobs.RunStore;
using Pipeline.Stages.Artifacts;
using Pipeline.Jobs.Configuration;

namespace Pipeline.Jobs.Hosting;

/// <summary>
/// A process that starts while PostgreSQL or the blob store is down (a VM booting beside its database, a restart)
/// waits for them with back-off (1 s doubling to 30 s), logging what it waits for, instead of exiting. Errors that no
/// wait can fix (a wrong password, a missing database) still stop it at once with their message.
/// </summary>
public static class StartupWait
{
    private static readonly TimeSpan MaxDelay = TimeSpan.FromSeconds(30);

    public static async Task UntilAsync(string what, Func<CancellationToken, Task> probe, ILogger log, CancellationToken ct)
    {
        var delay = TimeSpan.FromSeconds(1);
        for (var tries = 1; ; tries++)
        {
            try
            {
                await probe(ct);
                if (tries > 1) log.LogInformation("{What} answered after {Tries} tries", what, tries);
                return;
            }
            catch (Exception e) when (!ct.IsCancellationRequested && IsTransient(e))
            {
                log.LogWarning("Waiting for {What}: {Error}; next try in {Delay:F0} s", what, StoreOutage.Describe(e), delay.TotalSeconds);
            }
            await Task.Delay(delay, ct);
            delay = delay * 2 > MaxDelay ? MaxDelay : delay * 2;
        }
    }

    /// <summary>"PostgreSQL at db.example:5432, database pipeline": where, without the password.</summary>
    public static string DescribePostgres(string connectionString)
    {
        var b = new NpgsqlConnectionStringBuilder(connectionString);
        return $"PostgreSQL at {b.Host}:{b.Port}, database {b.Database}";
    }

    public static Task PostgresAsync(string connectionString, ILogger log, CancellationToken ct) =>
        UntilAsync(DescribePostgres(connectionString), async token =>
        {
            await using var connection = new NpgsqlConnection(connectionString);
            await connection.OpenAsync(token);
        }, log, ct);

    private static bool IsTransient(Exception e) => e is NpgsqlException { IsTransient: true } || StoreOutage.IsUnreachable(e);
}

/// <summary>
/// Runs first in every host: waits for the run store and creates or checks its schema, then waits for the artifact
/// store, so that nothing else starts against a store that is not there.
/// </summary>
public sealed class StartupChecks(IDbContextFactory<RunStoreContext> dbs, IArtifactStore store, PipelineMode mode, ILogger<StartupChecks> log) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await StartupWait.UntilAsync(mode.EmbeddedDatabase ? $"the run store ({mode.DataFolder})" : "the run store", async ct =>
        {
            await using var db = await dbs.CreateDbContextAsync(ct);
            await RunStoreSchema.EnsureAsync(db, ct);
        }, log, cancellationToken);
        await StartupWait.UntilAsync($"the artifact store ({store.Kind})", ct => store.GetInfoAsync("health/startup-probe", ct), log, cancellationToken);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
