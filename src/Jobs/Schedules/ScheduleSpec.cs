using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Cronos;
using Pipeline.Jobs.RunStore;
using Pipeline.Stages.Execution;

namespace Pipeline.Jobs.Schedules;

/// <summary>
/// A schedule to add (CLI `schedules add`, POST /api/schedules): a cron in an IANA time zone, and a preset name or a
/// RunSpec (JSON) with <c>key.path=value</c> overrides. <see cref="Misfire"/> is once (default), skip or all.
/// </summary>
public sealed record ScheduleSpec(
    string? Name, string? Cron, string? TimeZone = null, string? Preset = null, string? SpecJson = null, IReadOnlyList<string>? Set = null,
    string? Misfire = null, bool Enabled = true);

/// <summary>Why a schedule request was refused: <see cref="Invalid"/> (400, exit 2), <see cref="Duplicate"/> (409), <see cref="NotFound"/> (404).</summary>
public enum ScheduleProblem { Invalid, Duplicate, NotFound }

public sealed class ScheduleException(IReadOnlyList<ValidationError> errors, ScheduleProblem problem = ScheduleProblem.Invalid)
    : Exception(problem == ScheduleProblem.Invalid ? "Invalid schedule:\n" + string.Join("\n", errors.Select(e => "  " + e)) : string.Join("\n", errors.Select(e => e.Message)))
{
    public IReadOnlyList<ValidationError> Errors { get; } = errors;
    public ScheduleProblem Problem { get; } = problem;

    public static ScheduleException NotFound(string name) =>
        new([new ValidationError("name", $"Schedule '{name}' does not exist.")], ScheduleProblem.NotFound);
}

/// <summary>A schedule as listed: <c>NextFiring</c> (UTC) is null while it is disabled.</summary>
public sealed record ScheduleView(
    long Id, string Name, string Cron, string TimeZone, string? Preset, JsonNode? Spec, IReadOnlyList<string> Overrides, ScheduleMisfire Misfire,
    bool Enabled, DateTime CreatedAt, long? LastRunId, DateTime? NextFiring);

/// <summary>Cron expressions and time zones as Hangfire reads them (Cronos), with messages that name the field and the fix.</summary>
public static partial class ScheduleTimes
{
    [GeneratedRegex(@"\s+")]
    private static partial Regex Blanks();

    /// <summary>Five fields, six with seconds first, or a macro such as @daily; null and an error when it is none of these.</summary>
    public static CronExpression? ParseCron(string? cron, List<ValidationError> errors)
    {
        const string Fix = "give 5 fields (minute hour day-of-month month day-of-week), e.g. '0 2 * * *' for 02:00 every day, or 6 with seconds first";
        if (string.IsNullOrWhiteSpace(cron))
        {
            errors.Add(new ValidationError("cron", $"is required; {Fix}"));
            return null;
        }
        var fields = Blanks().Split(cron.Trim()).Length;
        if (fields is not (5 or 6) && !cron.TrimStart().StartsWith('@'))
        {
            errors.Add(new ValidationError("cron", $"'{cron}' has {fields} field{(fields == 1 ? "" : "s")}; {Fix}"));
            return null;
        }
        try
        {
            return CronExpression.Parse(cron.Trim(), fields == 6 ? CronFormat.IncludeSeconds : CronFormat.Standard);
        }
        catch (CronFormatException e)
        {
            errors.Add(new ValidationError("cron", $"'{cron}' is not a valid cron expression ({e.Message}); {Fix}"));
            return null;
        }
    }

    /// <summary>An IANA time zone (Europe/Berlin, UTC); null and an error when this machine does not know it.</summary>
    public static TimeZoneInfo? FindZone(string zone, List<ValidationError> errors)
    {
        try
        {
            return TimeZoneInfo.FindSystemTimeZoneById(zone);
        }
        catch (Exception e) when (e is TimeZoneNotFoundException or InvalidTimeZoneException)
        {
            errors.Add(new ValidationError("time_zone", $"'{zone}' is not a known time zone; give an IANA name such as Europe/Berlin, America/New_York or UTC"));
            return null;
        }
    }

    /// <summary>The first firing after <paramref name="fromUtc"/>, computed on the zone's wall clock (DST-safe, as Hangfire fires).</summary>
    public static DateTime? Next(string cron, string zone, DateTime fromUtc)
    {
        var errors = new List<ValidationError>();
        var expression = ParseCron(cron, errors);
        var tz = FindZone(zone, errors);
        return expression is null || tz is null ? null : expression.GetNextOccurrence(DateTime.SpecifyKind(fromUtc, DateTimeKind.Utc), tz);
    }
}
