using Pipeline.Jobs.RunStore;

namespace Pipeline.Jobs.Runs;

public enum RunSort { Newest, Oldest, Name, Status, Duration }

/// <summary>One page of the run list: <c>Page</c> from 1; <c>Text</c> matches name or preset (case-insensitive); the filters are ANDed.</summary>
public sealed record RunListQuery(int Page = 1, int PageSize = 25, string? Text = null, RunStatus? Status = null, string? Preset = null,
    long? ScheduleId = null, RunSort Sort = RunSort.Newest);

public sealed record RunPage(IReadOnlyList<RunRow> Rows, int Total, int Page, int PageSize);

/// <summary>
/// A run in the dashboard's list. <c>Trigger</c> is "manual" or the schedule's name; <c>Progress</c> in [0, 1] over its
/// stages; <c>GpuHours</c> is the wall time of its gpu-queue stages that ran (not cached), in hours.
/// </summary>
public sealed record RunRow(long Id, string Name, string? Preset, string Trigger, long? ScheduleId, RunStatus Status, int Stages, int StagesDone,
    double Progress, DateTime CreatedAt, DateTime? StartedAt, DateTime? FinishedAt, TimeSpan? Duration, double GpuHours, RunHeadline? Headline);

/// <summary>What a launch would run: its stages in plan order, and for each whether a cached result would be reused.</summary>
public sealed record RunPreview(IReadOnlyList<PreviewStage> Stages);

/// <summary><c>FromCache</c>: a succeeded stage with this stage's content key exists (its id in <c>CachedFrom</c>); false also
/// when the key cannot be known before upstream stages run.</summary>
public sealed record PreviewStage(string Name, string Kind, string Queue, IReadOnlyList<string> DependsOn, bool FromCache, long? CachedFrom, string? ContentKey);
