using Hangfire;

namespace Pipeline.Jobs.Schedules;

/// <summary>The Hangfire job a schedule's recurring job runs at each firing: it launches the schedule's run.</summary>
public sealed class ScheduledRunJob(ScheduleService schedules)
{
    // A retry after a transient store error still launches that night's run; a RunSpec that no longer loads (a preset
    // edited since) fails each attempt the same way, and the failed job stays visible in the Hangfire dashboard.
    [AutomaticRetry(Attempts = 3)]
    public async Task RunAsync(long scheduleId, CancellationToken cancellationToken) =>
        await schedules.FireAsync(scheduleId, manual: false, cancellationToken);
}
