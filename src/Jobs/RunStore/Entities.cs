namespace Pipeline.Jobs.RunStore;

// The run store's model (DESIGN.md "Run engine"): the source of truth for runs, stages, their history, metrics,
// artifacts and schedules. Hangfire only carries jobs; it never decides a stage's state.

/// <summary>
/// A run's state. <see cref="Interrupted"/> is never stored: the read side reports it for a run whose running stages
/// all stopped heartbeating (their process died) — `runs retry` continues it, or a worker's reconciler does.
/// </summary>
public enum RunStatus { Pending, Running, Succeeded, Failed, Cancelled, Interrupted }

/// <summary>
/// A stage's state. <see cref="Pruned"/>: a search trial's stage that successive halving stopped at a rung (its
/// checkpoint kept); it ends the trial, and neither its dependents run nor the run fails because of it.
/// </summary>
public enum StageStatus { Pending, Queued, Running, Succeeded, Failed, Cancelled, Cached, Blocked, Pruned }

public static class StageStatuses
{
    /// <summary>A dependency in one of these states lets its dependents run.</summary>
    public static bool IsDone(StageStatus s) => s is StageStatus.Succeeded or StageStatus.Cached;

    public static bool IsTerminal(StageStatus s) =>
        s is StageStatus.Succeeded or StageStatus.Cached or StageStatus.Failed or StageStatus.Cancelled or StageStatus.Blocked or StageStatus.Pruned;
}

public sealed class Run
{
    public long Id { get; set; }
    public required string Name { get; set; }
    public string? Preset { get; set; }

    /// <summary>The expanded RunSpec (after --set overrides), as JSON.</summary>
    public required string SpecJson { get; set; }

    /// <summary>The <c>key.path=value</c> overrides (CLI --set, API "set") applied to the preset, as a JSON array; null when none.</summary>
    public string? OverridesJson { get; set; }
    public RunStatus Status { get; set; }
    public bool NoCache { get; set; }
    public long? ScheduleId { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime? FinishedAt { get; set; }
    public List<Stage> Stages { get; set; } = [];
}

public sealed class Stage
{
    public long Id { get; set; }
    public long RunId { get; set; }
    public Run? Run { get; set; }
    public required string Name { get; set; }
    public required string Kind { get; set; }
    public required string Queue { get; set; }

    /// <summary>Parameters with every default filled in, serialised canonically: part of the content key.</summary>
    public required string ParamsJson { get; set; }

    /// <summary>hash(kind, stage version, canonical params, input artifact hashes); set when the stage starts.</summary>
    public string? ContentKey { get; set; }
    public StageStatus Status { get; set; }

    /// <summary>Starts at 1; each retry or re-delivery after a lost worker increments it.</summary>
    public int Attempt { get; set; } = 1;
    public double Progress { get; set; }
    public string? ProgressMessage { get; set; }
    public DateTime? HeartbeatAt { get; set; }
    public string? Worker { get; set; }
    public string? JobId { get; set; }
    public bool CancelRequested { get; set; }
    public long? CachedFromStageId { get; set; }

    /// <summary>Computed afresh even when a cached result exists: set on the stages of a "run again from this stage" run.</summary>
    public bool NoCache { get; set; }
    public string? SummaryJson { get; set; }
    public string? Error { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime? QueuedAt { get; set; }
    public DateTime? StartedAt { get; set; }
    public DateTime? FinishedAt { get; set; }
    public List<StageDependency> DependsOn { get; set; } = [];
    public List<StageTransition> History { get; set; } = [];

    /// <summary>The search trial this stage belongs to (added to the run by its search stage); null for the RunSpec's own stages.</summary>
    public long? TrialId { get; set; }
}

public sealed class StageDependency
{
    public long StageId { get; set; }
    public long DependsOnStageId { get; set; }
    public Stage? DependsOnStage { get; set; }
}

public sealed class StageTransition
{
    public long Id { get; set; }
    public long StageId { get; set; }
    public int Attempt { get; set; }
    public StageStatus? From { get; set; }
    public StageStatus To { get; set; }
    public DateTime At { get; set; }
    public required string Reason { get; set; }
}

public sealed class MetricPoint
{
    public long Id { get; set; }
    public long StageId { get; set; }
    public required string Name { get; set; }
    public long? Step { get; set; }
    public double Value { get; set; }
    public DateTime At { get; set; }
}

/// <summary>A line a stage attempt logged, kept as a bounded tail per attempt (<see cref="Engine.StageLog"/>) so it outlives the worker.</summary>
public sealed class StageLogLine
{
    public long Id { get; set; }
    public long RunId { get; set; }
    public long StageId { get; set; }
    public int Attempt { get; set; }
    public DateTime At { get; set; }

    /// <summary>As Microsoft.Extensions.Logging names it: Information, Warning, Error, …</summary>
    public required string Level { get; set; }
    public required string Message { get; set; }
}

public sealed class ArtifactRecord
{
    public long Id { get; set; }
    public long RunId { get; set; }
    public long StageId { get; set; }

    /// <summary>Store-relative path (runs/{runId}/{kind}-{key8}/{file}).</summary>
    public required string Path { get; set; }
    public required string Uri { get; set; }
    public long Bytes { get; set; }
    public required string Sha256 { get; set; }
    public required string MediaType { get; set; }
    public DateTime CreatedAt { get; set; }

    /// <summary>The record of an artifact a stage wrote to the store.</summary>
    public static ArtifactRecord Of(Stage stage, Pipeline.Stages.Artifacts.ArtifactInfo info, DateTime at) => Of(stage.RunId, stage.Id, info, at);

    public static ArtifactRecord Of(long runId, long stageId, Pipeline.Stages.Artifacts.ArtifactInfo info, DateTime at) => new()
    {
        RunId = runId,
        StageId = stageId,
        Path = info.Path,
        Uri = info.Uri.ToString(),
        Bytes = info.Bytes,
        Sha256 = info.Sha256,
        MediaType = info.MediaType,
        CreatedAt = at,
    };
}

/// <summary>What a schedule does with the firings it missed while no Hangfire server ran (Hangfire's misfire handling).</summary>
public enum ScheduleMisfire
{
    /// <summary>One run for all the missed firings, not a burst (Hangfire's Relaxed).</summary>
    Once,

    /// <summary>None: the next firing on time is the next run (Ignorable).</summary>
    Skip,

    /// <summary>One run per missed firing (Strict).</summary>
    All,
}

/// <summary>
/// A run launched on a cron in an IANA time zone, from a preset (read at each firing) or a RunSpec, plus overrides.
/// Mirrored to a Hangfire recurring job while enabled (src/Jobs/Schedules).
/// </summary>
public sealed class Schedule
{
    public long Id { get; set; }
    public required string Name { get; set; }

    /// <summary>Five fields, or six with seconds first.</summary>
    public required string Cron { get; set; }
    public string TimeZone { get; set; } = "UTC";

    /// <summary>A preset name; null when the schedule holds its own RunSpec in <see cref="SpecJson"/>.</summary>
    public string? Preset { get; set; }
    public string? SpecJson { get; set; }

    /// <summary>The <c>key.path=value</c> overrides applied at each firing, as a JSON array; null when none.</summary>
    public string? OverridesJson { get; set; }
    public ScheduleMisfire Misfire { get; set; }
    public bool Enabled { get; set; } = true;
    public DateTime CreatedAt { get; set; }
    public long? LastRunId { get; set; }
}

public enum SearchTrialStatus { Running, Completed, Failed, Pruned, Cancelled }

/// <summary>
/// One trial of a search stage (src/Jobs/Search): the proposal, recorded with its stages in one transaction, and its
/// result once its stages end. <see cref="Order"/> is the position in which results arrived — the history the sampler
/// is given is ordered by it, so a restarted process proposes what the first one would have.
/// </summary>
public sealed class SearchTrial
{
    public long Id { get; set; }
    public long SearchStageId { get; set; }

    /// <summary>0, 1, 2, … within the search, in proposal order.</summary>
    public int Number { get; set; }

    /// <summary>The active parameters' values, path → JSON value.</summary>
    public required string AssignmentJson { get; set; }
    public SearchTrialStatus Status { get; set; }
    public double? Objective { get; set; }

    /// <summary>For a pruned trial, the rung (training step) it was stopped at.</summary>
    public long? PrunedAtStep { get; set; }
    public int? Order { get; set; }
    public string? Error { get; set; }
    public DateTime ProposedAt { get; set; }
    public DateTime? FinishedAt { get; set; }
}

/// <summary>
/// A value a trial reported at a successive-halving rung, and the decision taken (recorded first, so that a resumed
/// trial reporting the same rung again gets the same answer). The order of the rows is the order of arrival.
/// </summary>
public sealed class TrialRung
{
    public long Id { get; set; }
    public long SearchStageId { get; set; }
    public long TrialId { get; set; }
    public long Step { get; set; }
    public double Value { get; set; }
    public bool Continued { get; set; }
    public DateTime At { get; set; }
}

public sealed class SchemaVersion
{
    public int Id { get; set; }
    public int Version { get; set; }
    public DateTime AppliedAt { get; set; }
}
