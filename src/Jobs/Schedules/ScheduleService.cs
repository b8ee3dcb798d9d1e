using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging;
using Pipeline.Jobs.RunSpecs;
using Pipeline.Jobs.RunStore;
using Pipeline.Jobs.Runs;
using Pipeline.Stages.Execution;

namespace Pipeline.Jobs.Schedules;

/// <summary>
/// Schedules for the CLI and the web API: add (refusing one that could never launch), remove, enable, disable, list, and
/// fire — the one way a schedule launches a run, for a Hangfire firing and a manual trigger alike. Every change is
/// mirrored to Hangfire at once (<see cref="ScheduleMirror"/>).
/// </summary>
public sealed partial class ScheduleService(
    IDbContextFactory<RunStoreContext> dbs, RunLauncher launcher, ScheduleMirror mirror, ILogger<ScheduleService> log)
{
    [GeneratedRegex("^[a-z0-9][a-z0-9_.-]{0,63}$")]
    private static partial Regex NamePattern();

    // As the RunSpec loader reads a spec: a stored spec keeps its author's comments.
    private static readonly JsonDocumentOptions SpecText = new() { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true };

    private static readonly Dictionary<string, ScheduleMisfire> MisfirePolicies = new(StringComparer.OrdinalIgnoreCase)
    {
        ["once"] = ScheduleMisfire.Once,
        ["skip"] = ScheduleMisfire.Skip,
        ["all"] = ScheduleMisfire.All,
    };

    /// <summary>
    /// Adds a schedule after checking everything a firing needs (the RunSpec through the launcher's own checks;
    /// <paramref name="dataRoots"/> as the launch would apply them: the web API passes Pipeline:DataRoots).
    /// </summary>
    public async Task<ScheduleView> AddAsync(ScheduleSpec spec, DataRoots? dataRoots = null, CancellationToken ct = default)
    {
        var row = await CheckedAsync(spec, dataRoots, ct);
        row.CreatedAt = DateTime.UtcNow;
        await using var db = await dbs.CreateDbContextAsync(ct);
        if (await db.Schedules.AnyAsync(s => s.Name == row.Name, ct)) throw Duplicate(row.Name);
        db.Schedules.Add(row);
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException)
        {
            // Added by someone else since the check above (the unique index), or another failure.
            if (await NameTakenAsync(row.Name, ct)) throw Duplicate(row.Name);
            throw;
        }
        mirror.Apply(row);
        log.LogInformation("Schedule {Name} added: {Cron} ({TimeZone}), {Enabled}", row.Name, row.Cron, row.TimeZone, row.Enabled ? "enabled" : "disabled");
        return View(row, DateTime.UtcNow);
    }

    /// <summary>
    /// Replaces the settings of the schedule named <c>spec.Name</c> in one update, after the same checks as
    /// <see cref="AddAsync"/>: a refused change leaves the schedule as it was, and the schedule keeps its id, its
    /// runs and its last firing.
    /// </summary>
    public async Task<ScheduleView> UpdateAsync(ScheduleSpec spec, DataRoots? dataRoots = null, CancellationToken ct = default)
    {
        var changed = await CheckedAsync(spec, dataRoots, ct);
        await using var db = await dbs.CreateDbContextAsync(ct);
        var row = await db.Schedules.SingleOrDefaultAsync(s => s.Name == changed.Name, ct) ?? throw ScheduleException.NotFound(changed.Name);
        row.Cron = changed.Cron;
        row.TimeZone = changed.TimeZone;
        row.Preset = changed.Preset;
        row.SpecJson = changed.SpecJson;
        row.OverridesJson = changed.OverridesJson;
        row.Misfire = changed.Misfire;
        row.Enabled = changed.Enabled;
        await db.SaveChangesAsync(ct);
        mirror.Apply(row);
        log.LogInformation("Schedule {Name} changed: {Cron} ({TimeZone}), {Enabled}", row.Name, row.Cron, row.TimeZone, row.Enabled ? "enabled" : "disabled");
        return View(row, DateTime.UtcNow);
    }

    /// <summary>The schedule row <paramref name="spec"/> describes (not stored), or every reason it could never launch.</summary>
    private async Task<Schedule> CheckedAsync(ScheduleSpec spec, DataRoots? dataRoots, CancellationToken ct)
    {
        var errors = new List<ValidationError>();
        var name = spec.Name?.Trim() ?? "";
        if (name.Length == 0) errors.Add(new ValidationError("name", "is required; name the schedule, e.g. nightly-sweep"));
        else if (!NamePattern().IsMatch(name))
        {
            errors.Add(new ValidationError("name", $"'{name}' must be 1-64 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit (e.g. nightly-sweep)"));
        }
        ScheduleTimes.ParseCron(spec.Cron, errors);
        var zone = string.IsNullOrWhiteSpace(spec.TimeZone) ? "UTC" : spec.TimeZone.Trim();
        ScheduleTimes.FindZone(zone, errors);
        var misfire = ScheduleMisfire.Once;
        if (spec.Misfire is not null && !MisfirePolicies.TryGetValue(spec.Misfire, out misfire))
        {
            errors.Add(new ValidationError("misfire", $"'{spec.Misfire}' is not a misfire policy; use once (after downtime, one run; the default), skip or all"));
        }
        var overrides = spec.Set?.ToList() ?? [];
        if ((spec.Preset is null) == (spec.SpecJson is null))
        {
            errors.Add(new ValidationError("preset", "give either a preset name (--preset, 'preset') or a RunSpec (--spec FILE, 'spec'), not both"));
        }
        else
        {
            try
            {
                await launcher.CheckAsync(spec.Preset, spec.SpecJson, overrides, dataRoots, ct);
            }
            catch (RunSpecException e)
            {
                errors.AddRange(e.Errors);
            }
        }
        if (errors.Count > 0) throw new ScheduleException(errors);
        return new Schedule
        {
            Name = name,
            Cron = spec.Cron!.Trim(),
            TimeZone = zone,
            Preset = spec.Preset,
            SpecJson = spec.SpecJson,
            OverridesJson = overrides.Count == 0 ? null : JsonSerializer.Serialize(overrides),
            Misfire = misfire,
            Enabled = spec.Enabled,
        };
    }

    public async Task RemoveAsync(string name, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        if (await db.Schedules.Where(s => s.Name == name).ExecuteDeleteAsync(ct) == 0) throw ScheduleException.NotFound(name);
        mirror.Remove(name);
        log.LogInformation("Schedule {Name} removed", name);
    }

    public async Task<ScheduleView> SetEnabledAsync(string name, bool enabled, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var row = await db.Schedules.SingleOrDefaultAsync(s => s.Name == name, ct) ?? throw ScheduleException.NotFound(name);
        row.Enabled = enabled;
        await db.SaveChangesAsync(ct);
        mirror.Apply(row);
        log.LogInformation("Schedule {Name} {Enabled}", name, enabled ? "enabled" : "disabled");
        return View(row, DateTime.UtcNow);
    }

    public async Task<IReadOnlyList<ScheduleView>> ListAsync(CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var now = DateTime.UtcNow;
        return [.. (await db.Schedules.AsNoTracking().OrderBy(s => s.Name).ToListAsync(ct)).Select(s => View(s, now))];
    }

    /// <summary>Launches the schedule's run now (`schedules trigger`), linked to it, as a firing does; returns the run id.</summary>
    public async Task<long> TriggerAsync(string name, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var id = await db.Schedules.Where(s => s.Name == name).Select(s => (long?)s.Id).SingleOrDefaultAsync(ct) ?? throw ScheduleException.NotFound(name);
        return await FireAsync(id, manual: true, ct) ?? throw ScheduleException.NotFound(name);
    }

    /// <summary>
    /// Launches a run of schedule <paramref name="scheduleId"/> (linked to it; cached stages are reused) and records it as
    /// the schedule's last run. A firing (<paramref name="manual"/> false) of a schedule removed or disabled since its
    /// Hangfire job was made launches nothing and returns null.
    /// </summary>
    public async Task<long?> FireAsync(long scheduleId, bool manual, CancellationToken ct = default)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        var row = await db.Schedules.AsNoTracking().SingleOrDefaultAsync(s => s.Id == scheduleId, ct);
        if (row is null || (!row.Enabled && !manual))
        {
            log.LogWarning("Schedule {ScheduleId} fired but is {State}: no run launched", scheduleId, row is null ? "gone" : "disabled");
            return null;
        }
        var overrides = OverridesOf(row);
        var (runId, _) = row.Preset is not null
            ? await launcher.LaunchPresetAsync(row.Preset, overrides, noCache: false, allowPaths: false, scheduleId: row.Id, ct: ct)
            : await launcher.LaunchSpecAsync(row.SpecJson!, null, overrides, noCache: false, scheduleId: row.Id, ct: ct);
        await db.Schedules.Where(s => s.Id == row.Id).ExecuteUpdateAsync(u => u.SetProperty(s => s.LastRunId, runId), ct);
        log.LogInformation("Schedule {Name} fired: run {RunId}{Manual}", row.Name, runId, manual ? " (triggered by hand)" : "");
        return runId;
    }

    private async Task<bool> NameTakenAsync(string name, CancellationToken ct)
    {
        await using var db = await dbs.CreateDbContextAsync(ct);
        return await db.Schedules.AnyAsync(s => s.Name == name, ct);
    }

    private static ScheduleException Duplicate(string name) =>
        new([new ValidationError("name", $"Schedule '{name}' already exists; remove it first or choose another name.")], ScheduleProblem.Duplicate);

    private static List<string> OverridesOf(Schedule s) =>
        s.OverridesJson is null ? [] : JsonSerializer.Deserialize<List<string>>(s.OverridesJson) ?? [];

    private static ScheduleView View(Schedule s, DateTime now) => new(
        s.Id, s.Name, s.Cron, s.TimeZone, s.Preset, s.SpecJson is null ? null : JsonNode.Parse(s.SpecJson, documentOptions: SpecText), OverridesOf(s), s.Misfire, s.Enabled,
        s.CreatedAt, s.LastRunId, s.Enabled ? ScheduleTimes.Next(s.Cron, s.TimeZone, now) : null);
}
