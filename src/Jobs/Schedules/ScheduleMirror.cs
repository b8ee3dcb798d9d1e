using Hangfire;
using Hangfire.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Pipeline.Jobs.Configuration;
using Pipeline.Jobs.Engine;
using Pipeline.Jobs.RunStore;
using Pipeline.Stages.Execution;

namespace Pipeline.Jobs.Schedules;

/// <summary>
/// Keeps Hangfire's recurring jobs equal to the enabled schedules: one job "schedule:NAME" each, on the default queue,
/// with the schedule's cron, time zone and misfire policy. <see cref="ScheduleService"/> applies each change at once;
/// as a hosted service (every process with a Hangfire server) it mirrors all rows at start-up and then every
/// Pipeline:ScheduleSyncInterval — in embedded mode Hangfire's storage is this process's memory, so changes made by
/// another process (the CLI) arrive that way.
/// </summary>
public sealed class ScheduleMirror(
    IDbContextFactory<RunStoreContext> dbs, IRecurringJobManager recurring, JobStorage storage, IOptions<PipelineOptions> options,
    ILogger<ScheduleMirror> log) : PeriodicPass(log)
{
    private bool _mirrored;

    public const string JobPrefix = "schedule:";

    public static string JobId(string scheduleName) => JobPrefix + scheduleName;

    public static MisfireHandlingMode HangfireMisfire(ScheduleMisfire misfire) => misfire switch
    {
        ScheduleMisfire.Skip => MisfireHandlingMode.Ignorable,
        ScheduleMisfire.All => MisfireHandlingMode.Strict,
        _ => MisfireHandlingMode.Relaxed,
    };

    /// <summary>An enabled schedule gets (or updates) its recurring job; a disabled one loses it.</summary>
    public void Apply(Schedule schedule)
    {
        if (!schedule.Enabled)
        {
            Remove(schedule.Name);
            return;
        }
        recurring.AddOrUpdate<ScheduledRunJob>(JobId(schedule.Name), StageQueues.Default, job => job.RunAsync(schedule.Id, CancellationToken.None),
            schedule.Cron, new RecurringJobOptions
            {
                TimeZone = TimeZoneInfo.FindSystemTimeZoneById(schedule.TimeZone),
                MisfireHandling = HangfireMisfire(schedule.Misfire),
            });
    }

    public void Remove(string scheduleName) => recurring.RemoveIfExists(JobId(scheduleName));

    /// <summary>Mirrors every row, and removes recurring jobs whose schedule is gone or disabled; returns the enabled count.</summary>
    public async Task<int> SyncAsync(CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var rows = await db.Schedules.AsNoTracking().ToListAsync(ct);
        foreach (var row in rows) Apply(row);
        var enabled = rows.Where(r => r.Enabled).Select(r => JobId(r.Name)).ToHashSet();
        using var connection = storage.GetConnection();
        foreach (var stale in connection.GetRecurringJobs().Select(j => j.Id).Where(id => id.StartsWith(JobPrefix, StringComparison.Ordinal) && !enabled.Contains(id)))
        {
            recurring.RemoveIfExists(stale);
            Log.LogInformation("Recurring job {JobId} removed: its schedule is gone or disabled", stale);
        }
        return enabled.Count;
    }

    protected override TimeSpan Interval => options.Value.ScheduleSyncInterval;

    protected override string PassName => "Mirroring schedules to Hangfire";

    protected override async Task PassAsync(CancellationToken ct)
    {
        var count = await SyncAsync(ct);
        if (!_mirrored) Log.LogInformation("Mirrored {Count} enabled schedules to Hangfire recurring jobs", count);
        _mirrored = true;
    }
}
