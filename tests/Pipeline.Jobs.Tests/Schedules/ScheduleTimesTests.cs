using Pipeline.Jobs.Cli;
using Pipeline.Jobs.Schedules;

namespace Pipeline.Jobs.Tests.Schedules;

/// <summary>
/// Next firings on the schedule's wall clock across Berlin's 2026 DST changes, as Cronos (and so Hangfire) computes them:
/// a time the spring change skips fires at the first valid time after the gap; a time the autumn change repeats fires once.
/// </summary>
public sealed class ScheduleTimesTests
{
    private static DateTime Utc(string iso) => DateTime.Parse(iso, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AdjustToUniversal);

    [Fact]
    public void Two_oclock_in_berlin_on_the_spring_change_fires_at_three_cest_the_first_time_after_the_gap()
    {
        // 2026-03-28 03:00 CET = 02:00 UTC. On 29 March clocks jump from 02:00 CET (01:00 UTC) to 03:00 CEST.
        var next = ScheduleTimes.Next("0 2 * * *", "Europe/Berlin", Utc("2026-03-28T02:00:00Z"));
        var after = ScheduleTimes.Next("0 2 * * *", "Europe/Berlin", next!.Value);

        Assert.Equal(Utc("2026-03-29T01:00:00Z"), next);
        Assert.Equal(Utc("2026-03-30T00:00:00Z"), after); // 02:00 CEST again
        Assert.Equal("2026-03-29 03:00 +02:00 (01:00 UTC)", ScheduleCommands.Local(next.Value, "Europe/Berlin"));
    }

    [Fact]
    public void Two_oclock_in_berlin_on_the_autumn_change_fires_once_at_the_first_of_the_two()
    {
        // On 25 October clocks go back from 03:00 CEST (01:00 UTC) to 02:00 CET: 02:00 happens at 00:00 and 01:00 UTC.
        var firings = new List<DateTime>();
        for (var t = Utc("2026-10-24T02:00:00Z"); firings.Count < 3;) firings.Add(t = ScheduleTimes.Next("0 2 * * *", "Europe/Berlin", t)!.Value);

        Assert.Equal([Utc("2026-10-25T00:00:00Z"), Utc("2026-10-26T01:00:00Z"), Utc("2026-10-27T01:00:00Z")], firings);
        Assert.Equal("2026-10-25 02:00 +02:00 (00:00 UTC)", ScheduleCommands.Local(firings[0], "Europe/Berlin"));
        Assert.Equal("2026-10-26 02:00 +01:00 (01:00 UTC)", ScheduleCommands.Local(firings[1], "Europe/Berlin"));
    }

    [Fact]
    public void An_hourly_schedule_keeps_every_hour_through_the_autumn_change()
    {
        // Interval crons do not skip the repeated hour: 00:30, 01:30 (both 02:30 local) and 02:30 UTC.
        var firings = new List<DateTime>();
        for (var t = Utc("2026-10-25T00:00:00Z"); firings.Count < 3;) firings.Add(t = ScheduleTimes.Next("30 * * * *", "Europe/Berlin", t)!.Value);

        Assert.Equal([Utc("2026-10-25T00:30:00Z"), Utc("2026-10-25T01:30:00Z"), Utc("2026-10-25T02:30:00Z")], firings);
    }
}
