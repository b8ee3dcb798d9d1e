using Pipeline.Stages.Execution;

namespace Pipeline.Stages.Sweeps;

/// <summary>
/// Parameters of the <c>leaderboard</c> stage. The stage depends on a <c>search</c> stage and renders its
/// <c>trials.json</c>; the trials' own artifacts are read from the store through the paths it lists.
/// </summary>
public sealed record LeaderboardParams : IStageParams
{
    /// <summary>The dependency (a search stage) whose trials are ranked; null = the only dependency that wrote a <c>trials.json</c>.</summary>
    public string? Search { get; init; }

    /// <summary>How many of the best rows the stage logs (every trial is in the outputs whatever this is).</summary>
    public int Top { get; init; } = 10;

    public IEnumerable<ValidationError> Validate()
    {
        if (Search is { } search && string.IsNullOrWhiteSpace(search)) yield return new("search", "is empty; name the search stage to rank or remove it.");
        if (Top is < 1 or > 1000) yield return new("top", $"must be between 1 and 1000; got {Top}.");
    }
}
