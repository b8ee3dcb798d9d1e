using System.CommandLine;
using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Pipeline.Jobs.Hosting;
using Pipeline.Jobs.Schedules;
using Pipeline.Stages.Execution;

namespace Pipeline.Jobs.Cli;

/// <summary>`pipeline schedules list|add|remove|enable|disable|trigger` (README "Schedules").</summary>
public static class ScheduleCommands
{
    private static readonly Option<bool> JsonOption = new("--json") { Description = "Print JSON instead of text" };

    public static Command Build()
    {
        var list = new Command("list", "List schedules with their next firing") { JsonOption };
        list.SetAction(async (p, ct) =>
        {
            using var host = await Commands.StartedHostAsync(ct);
            var schedules = await host.Services.GetRequiredService<ScheduleService>().ListAsync(ct);
            if (p.GetValue(JsonOption)) CliOutput.Json(schedules);
            else Print(schedules, Console.Out);
            return CliOutput.Ok;
        });

        var name = new Option<string>("--name") { Description = "Schedule name (lower-case letters, digits, '.', '_', '-')", Required = true };
        var cron = new Option<string>("--cron") { Description = "Cron: 5 fields (minute hour day-of-month month day-of-week), or 6 with seconds first", Required = true };
        var zone = new Option<string>("--time-zone") { Description = "IANA time zone the cron is read in", DefaultValueFactory = _ => "UTC" };
        var preset = new Option<string?>("--preset") { Description = "Preset name (presets/NAME.json), read at each firing" };
        var specFile = new Option<string?>("--spec") { Description = "RunSpec JSON file, stored with the schedule" };
        var set = new Option<string[]>("--set") { Description = "Override a RunSpec field: key.path=value (repeatable)", AllowMultipleArgumentsPerToken = false };
        var misfire = new Option<string>("--misfire") { Description = "Firings missed while no worker ran: once (one run), skip, or all", DefaultValueFactory = _ => "once" };
        misfire.AcceptOnlyFromAmong("once", "skip", "all");
        var disabled = new Option<bool>("--disabled") { Description = "Add it disabled (enable it later)" };
        var add = new Command("add", "Add a schedule that launches a run from a preset or RunSpec on a cron") { name, cron, zone, preset, specFile, set, misfire, disabled };
        add.SetAction(async (p, ct) =>
        {
            string? json = null;
            if (p.GetValue(specFile) is { } file)
            {
                json = File.Exists(file) ? await File.ReadAllTextAsync(file, ct) : throw new ScheduleException([new ValidationError("spec", $"no file '{file}'")]);
            }
            using var host = await Commands.StartedHostAsync(ct);
            var added = await host.Services.GetRequiredService<ScheduleService>().AddAsync(
                new ScheduleSpec(p.GetValue(name), p.GetValue(cron), p.GetValue(zone), p.GetValue(preset), json, p.GetValue(set), p.GetValue(misfire), !p.GetValue(disabled)), ct: ct);
            Console.WriteLine($"schedule '{added.Name}' added; {(added.NextFiring is { } next ? $"next firing {Local(next, added.TimeZone)}" : "disabled")}");
            if (Commands.ModeOf().EmbeddedDatabase) Console.WriteLine("Embedded mode: it fires while 'pipeline worker' or the web host runs here.");
            return CliOutput.Ok;
        });

        var named = new Argument<string>("name") { Description = "Schedule name (see 'pipeline schedules list')" };
        var remove = new Command("remove", "Remove a schedule (its runs stay)") { named };
        remove.SetAction(async (p, ct) =>
        {
            using var host = await Commands.StartedHostAsync(ct);
            await host.Services.GetRequiredService<ScheduleService>().RemoveAsync(p.GetValue(named)!, ct);
            Console.WriteLine($"schedule '{p.GetValue(named)}' removed");
            return CliOutput.Ok;
        });

        var wait = new Option<bool>("--wait") { Description = "Wait for the run to finish (embedded mode runs it in this process)" };
        var trigger = new Command("trigger", "Launch the schedule's run now, linked to the schedule") { named, wait, JsonOption };
        trigger.SetAction(async (p, ct) =>
        {
            using var host = PipelineHost.Build(worker: p.GetValue(wait) && Commands.ModeOf().EmbeddedDatabase, schedules: false);
            await host.StartAsync(ct);
            try
            {
                var runId = await host.Services.GetRequiredService<ScheduleService>().TriggerAsync(p.GetValue(named)!, ct);
                if (p.GetValue(wait)) return await Commands.FollowAsync(host, runId, p.GetValue(JsonOption), ct);
                if (p.GetValue(JsonOption)) CliOutput.Json(new { id = runId });
                else Console.WriteLine($"schedule '{p.GetValue(named)}': run {runId} launched. Follow it with: pipeline runs show {runId}");
                return CliOutput.Ok;
            }
            finally
            {
                await host.StopAsync(CancellationToken.None);
            }
        });

        return new Command("schedules", "Runs launched on a cron (Hangfire recurring jobs)")
            { list, add, remove, Toggle("enable", "Enable a schedule", named, true), Toggle("disable", "Disable a schedule (no firings until enabled)", named, false), trigger };
    }

    private static Command Toggle(string verb, string description, Argument<string> named, bool enabled)
    {
        var cmd = new Command(verb, description) { named };
        cmd.SetAction(async (p, ct) =>
        {
            using var host = await Commands.StartedHostAsync(ct);
            var s = await host.Services.GetRequiredService<ScheduleService>().SetEnabledAsync(p.GetValue(named)!, enabled, ct);
            Console.WriteLine($"schedule '{s.Name}' {verb}d{(s.NextFiring is { } next ? $"; next firing {Local(next, s.TimeZone)}" : "")}");
            return CliOutput.Ok;
        });
        return cmd;
    }

    public static void Print(IReadOnlyList<ScheduleView> schedules, TextWriter w)
    {
        if (schedules.Count == 0)
        {
            w.WriteLine("No schedules. Add one with: pipeline schedules add --name nightly --cron '0 2 * * *' --time-zone Europe/Berlin --preset smoke");
            return;
        }
        CliOutput.WriteTable(w, "", ["name", "enabled", "cron", "time zone", "next firing", "misfire", "launches", "last run"], schedules.Select(s => (IReadOnlyList<string>)[
            s.Name, s.Enabled ? "yes" : "no", s.Cron, s.TimeZone, s.NextFiring is { } next ? Local(next, s.TimeZone) : "—", s.Misfire.ToString().ToLowerInvariant(),
            (s.Preset is not null ? $"preset {s.Preset}" : $"spec {s.Spec?["name"]}") + string.Concat(s.Overrides.Select(o => $" --set {o}")),
            s.LastRunId?.ToString(CultureInfo.InvariantCulture) ?? "—"]));
    }

    /// <summary>A UTC instant on the schedule's wall clock with its offset, then in UTC: "2026-03-29 03:00 +02:00 (01:00 UTC)".</summary>
    public static string Local(DateTime utc, string zone)
    {
        var local = TimeZoneInfo.ConvertTime(new DateTimeOffset(utc, TimeSpan.Zero), TimeZoneInfo.FindSystemTimeZoneById(zone));
        return string.Create(CultureInfo.InvariantCulture, $"{local:yyyy-MM-dd HH:mm zzz} ({utc:HH:mm} UTC)");
    }
}
