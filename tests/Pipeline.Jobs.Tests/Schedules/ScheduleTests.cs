using System.Diagnostics;
using Hangfire;
using Hangfire.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Pipeline.Jobs.RunStore;
using Pipeline.Jobs.Schedules;
using Pipeline.Jobs.Tests.Engine;

namespace Pipeline.Jobs.Tests.Schedules;

/// <summary>Schedules on PostgreSQL with the real Hangfire storage: firings launch linked runs, the mirror follows every change.</summary>
public sealed class ScheduleTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(120);

    // One probe stage: a run takes a second or two.
    private static readonly string TinySpec = Specs.Probe(("only", "{ \"note\": \"nightly\" }", []));

    private static ScheduleSpec Nightly(string name = "nightly", string? spec = null, string? preset = null) =>
        new(name, "0 2 * * *", "Europe/Berlin", preset, preset is null ? spec ?? TinySpec : null);

    [Fact]
    public async Task A_schedule_fired_by_hangfire_launches_a_run_linked_to_it_and_an_unchanged_second_firing_is_cached()
    {
        await using var env = await PipelineTestEnvironment.CreateAsync();
        var host = await env.StartHostAsync(worker: true);
        var schedules = host.Services.GetRequiredService<ScheduleService>();
        var added = await schedules.AddAsync(Nightly());
        var recurring = host.Services.GetRequiredService<IRecurringJobManager>();

        recurring.Trigger(ScheduleMirror.JobId("nightly"));
        var first = await WaitForLaunchAsync(env, added.Id, after: null);
        var run = await PipelineTestEnvironment.WaitForRunAsync(host, first, Timeout);
        Assert.Equal(RunStatus.Succeeded, run.Status);
        Assert.Equal(StageStatus.Succeeded, Assert.Single(run.Stages).Status);

        recurring.Trigger(ScheduleMirror.JobId("nightly"));
        var second = await WaitForLaunchAsync(env, added.Id, after: first);
        var again = await PipelineTestEnvironment.WaitForRunAsync(host, second, Timeout);
        Assert.Equal(RunStatus.Succeeded, again.Status);
        Assert.Equal(StageStatus.Cached, Assert.Single(again.Stages).Status);
        Assert.False(again.NoCache);

        await using var db = env.OpenDb();
        Assert.Equal([added.Id, added.Id], await db.Runs.Where(r => r.Id == first || r.Id == second).Select(r => r.ScheduleId).ToListAsync());
        Assert.Equal(second, (await schedules.ListAsync()).Single().LastRunId);
    }

    [Fact]
    public async Task Trigger_launches_now_through_the_firing_code_even_while_disabled()
    {
        await using var env = await PipelineTestEnvironment.CreateAsync();
        var host = await env.StartHostAsync(worker: true);
        var schedules = host.Services.GetRequiredService<ScheduleService>();
        var added = await schedules.AddAsync(Nightly(preset: "probe-dag") with { Set = ["stages.join.params.note=scheduled"], Enabled = false });

        var runId = await schedules.TriggerAsync("nightly");

        var run = await PipelineTestEnvironment.WaitForRunAsync(host, runId, Timeout);
        Assert.Equal((RunStatus.Succeeded, "probe-dag"), (run.Status, run.Preset));
        Assert.Equal(["stages.join.params.note=scheduled"], run.Overrides);
        await using var db = env.OpenDb();
        Assert.Equal(added.Id, (await db.Runs.SingleAsync(r => r.Id == runId)).ScheduleId);
        var missing = await Assert.ThrowsAsync<ScheduleException>(() => schedules.TriggerAsync("nope"));
        Assert.Equal(ScheduleProblem.NotFound, missing.Problem);
    }

    [Fact]
    public async Task The_mirror_keeps_one_recurring_job_per_enabled_schedule_with_its_cron_time_zone_and_misfire_policy()
    {
        await using var env = await PipelineTestEnvironment.CreateAsync();
        var host = await env.StartHostAsync(worker: false);
        var schedules = host.Services.GetRequiredService<ScheduleService>();

        await schedules.AddAsync(Nightly() with { Misfire = "skip" });
        await schedules.AddAsync(new ScheduleSpec("seconds", "30 0 2 * * *", "America/New_York", "probe-dag", Misfire: "all"));
        await schedules.AddAsync(Nightly("paused") with { Enabled = false });
        Assert.Equal(
            [("schedule:nightly", "0 2 * * *", "Europe/Berlin", "Ignorable"), ("schedule:seconds", "30 0 2 * * *", "America/New_York", "Strict")],
            RecurringJobs(host));

        await schedules.SetEnabledAsync("nightly", false);
        Assert.Equal(["schedule:seconds"], RecurringJobs(host).Select(j => j.Id));
        await schedules.SetEnabledAsync("paused", true);
        await schedules.SetEnabledAsync("nightly", true);
        Assert.Equal(["schedule:nightly", "schedule:paused", "schedule:seconds"], RecurringJobs(host).Select(j => j.Id));
        await schedules.RemoveAsync("seconds");
        Assert.Equal(["schedule:nightly", "schedule:paused"], RecurringJobs(host).Select(j => j.Id));
        Assert.Equal(ScheduleProblem.NotFound, (await Assert.ThrowsAsync<ScheduleException>(() => schedules.RemoveAsync("seconds"))).Problem);
    }

    [Fact]
    public async Task An_update_changes_the_schedule_in_place_keeping_its_id_and_runs_and_a_refused_one_changes_nothing()
    {
        await using var env = await PipelineTestEnvironment.CreateAsync();
        var host = await env.StartHostAsync(worker: false);
        var schedules = host.Services.GetRequiredService<ScheduleService>();
        var added = await schedules.AddAsync(Nightly(preset: "probe-dag"));
        var run = await schedules.TriggerAsync("nightly");

        var changed = await schedules.UpdateAsync(new ScheduleSpec("nightly", "45 3 * * 1-5", "Asia/Tokyo", "probe-dag", Set: ["stages.join.params.note=weekdays"], Misfire: "skip"));
        var refused = await Assert.ThrowsAsync<ScheduleException>(() => schedules.UpdateAsync(new ScheduleSpec("nightly", "every night", "UTC", "probe-dag")));
        var missing = await Assert.ThrowsAsync<ScheduleException>(() => schedules.UpdateAsync(Nightly("nope", preset: "probe-dag")));

        Assert.Equal((added.Id, "45 3 * * 1-5", "Asia/Tokyo"), (changed.Id, changed.Cron, changed.TimeZone));
        Assert.Equal("cron", Assert.Single(refused.Errors).Field);
        Assert.Equal(ScheduleProblem.NotFound, missing.Problem);
        var listed = Assert.Single(await schedules.ListAsync());
        Assert.Equal((added.Id, "45 3 * * 1-5", run), (listed.Id, listed.Cron, listed.LastRunId));
        Assert.Equal([("schedule:nightly", "45 3 * * 1-5", "Asia/Tokyo", "Ignorable")], RecurringJobs(host));
    }

    [Fact]
    public async Task A_starting_worker_mirrors_the_rows_and_drops_recurring_jobs_of_schedules_that_are_gone()
    {
        await using var env = await PipelineTestEnvironment.CreateAsync();
        var client = await env.StartHostAsync(worker: false, name: "client");
        await client.Services.GetRequiredService<ScheduleService>().AddAsync(Nightly("gone"));
        await using (var db = env.OpenDb())
        {
            // Rows written behind Hangfire's back: one more schedule, and "gone" removed without its recurring job.
            db.Schedules.Add(new Schedule { Name = "written", Cron = "15 3 * * 1", TimeZone = "Asia/Tokyo", Preset = "probe-dag", CreatedAt = DateTime.UtcNow });
            await db.Schedules.Where(s => s.Name == "gone").ExecuteDeleteAsync();
            await db.SaveChangesAsync();
        }
        Assert.Equal(["schedule:gone"], RecurringJobs(client).Select(j => j.Id));

        var worker = await env.StartHostAsync(worker: true, name: "worker");

        // The first sync adds "written" before it drops "gone": wait for the end state, not for the first change.
        (string, string, string, string)[] expected = [("schedule:written", "15 3 * * 1", "Asia/Tokyo", "Relaxed")];
        var clock = Stopwatch.StartNew();
        while (!RecurringJobs(worker).SequenceEqual(expected) && clock.Elapsed < TimeSpan.FromSeconds(30)) await Task.Delay(200);
        Assert.Equal(expected, RecurringJobs(worker));
    }

    [Theory]
    [InlineData("", "0 2 * * *", "UTC", null, null, "name", "is required")]
    [InlineData("Nightly Sweep", "0 2 * * *", "UTC", null, null, "name", "lower-case letters")]
    [InlineData("bad-cron", "0 25 * * *", "UTC", null, null, "cron", "'0 25 * * *' is not a valid cron expression")]
    [InlineData("prose-cron", "every night", "UTC", null, null, "cron", "has 2 fields; give 5 fields")]
    [InlineData("bad-zone", "0 2 * * *", "Europe/Atlantis", null, null, "time_zone", "'Europe/Atlantis' is not a known time zone")]
    [InlineData("bad-preset", "0 2 * * *", "UTC", "no-such-preset", null, "preset", "no preset 'no-such-preset'")]
    [InlineData("bad-override", "0 2 * * *", "UTC", null, "stages.only.params.secs=1", "stages.only.params.secs", "")]
    [InlineData("bad-misfire", "0 2 * * *", "UTC", null, null, "misfire", "use once")]
    public async Task An_invalid_schedule_is_refused_naming_the_field_and_nothing_is_written(
        string name, string cron, string zone, string? preset, string? set, string field, string message)
    {
        await using var env = await PipelineTestEnvironment.CreateAsync();
        var host = await env.StartHostAsync(worker: false);
        var spec = new ScheduleSpec(name, cron, zone, preset, preset is null ? TinySpec : null, set is null ? null : [set], name == "bad-misfire" ? "twice" : null);

        var refused = await Assert.ThrowsAsync<ScheduleException>(() => host.Services.GetRequiredService<ScheduleService>().AddAsync(spec));

        Assert.Equal(ScheduleProblem.Invalid, refused.Problem);
        var error = Assert.Single(refused.Errors);
        Assert.Equal(field, error.Field);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
        await using var db = env.OpenDb();
        Assert.Equal(0, await db.Schedules.CountAsync());
        Assert.Empty(RecurringJobs(host));
    }

    [Fact]
    public async Task A_second_schedule_with_a_taken_name_is_refused_as_a_duplicate_and_the_first_is_kept()
    {
        await using var env = await PipelineTestEnvironment.CreateAsync();
        var host = await env.StartHostAsync(worker: false);
        var schedules = host.Services.GetRequiredService<ScheduleService>();
        await schedules.AddAsync(Nightly());

        var refused = await Assert.ThrowsAsync<ScheduleException>(() => schedules.AddAsync(Nightly(preset: "probe-dag") with { Cron = "0 3 * * *" }));

        Assert.Equal((ScheduleProblem.Duplicate, "name"), (refused.Problem, Assert.Single(refused.Errors).Field));
        var kept = Assert.Single(await schedules.ListAsync());
        Assert.Equal(("0 2 * * *", null), (kept.Cron, kept.Preset));
        Assert.Equal([("schedule:nightly", "0 2 * * *", "Europe/Berlin", "Relaxed")], RecurringJobs(host));
    }

    private static List<(string Id, string Cron, string TimeZone, string Misfire)> RecurringJobs(IHost host)
    {
        using var connection = host.Services.GetRequiredService<JobStorage>().GetConnection();
        return [.. connection.GetRecurringJobs().OrderBy(j => j.Id, StringComparer.Ordinal)
            .Select(j => (j.Id, j.Cron, j.TimeZoneId, Misfire(connection.GetAllEntriesFromHash($"recurring-job:{j.Id}")?.GetValueOrDefault("Misfire"))))];
    }

    // Hangfire keeps the mode as its number, and leaves it out when it is the default.
    private static string Misfire(string? stored) => stored is null ? "Relaxed" : Enum.Parse<MisfireHandlingMode>(stored).ToString();

    private static async Task<long> WaitForLaunchAsync(PipelineTestEnvironment env, long scheduleId, long? after)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < Timeout)
        {
            await using var db = env.OpenDb();
            if (await db.Schedules.Where(s => s.Id == scheduleId).Select(s => s.LastRunId).SingleAsync() is { } id && id != after) return id;
            await Task.Delay(200);
        }
        throw new TimeoutException($"Schedule {scheduleId} launched no run within {Timeout}:\n{env.WorkerLogs}");
    }
}
