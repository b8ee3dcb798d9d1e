namespace Pipeline.Jobs.Search;

public enum TrialStatus { Completed, Failed, Pruned, Running }

public enum ObjectiveDirection { Minimize, Maximize }

/// <summary>
/// One trial of a search. <see cref="Objective"/>: the final value of a completed trial, or for a pruned one the value
/// it was stopped with at <see cref="Step"/> (the rung it reached).
/// </summary>
public sealed record Trial(Assignment Assignment, TrialStatus Status, double? Objective = null, int? Step = null)
{
    /// <summary>Completed with a number: the trials an objective is learnt from.</summary>
    public bool HasObjective => Status == TrialStatus.Completed && Objective is { } v && !double.IsNaN(v);
}

/// <summary>
/// Proposes the next trial's assignment. Deterministic: the same seed, history (in completion order) and running set
/// give the same proposal. Null only when a finite space has no unused point left (grid).
/// </summary>
public interface ISampler
{
    Assignment? Propose(IReadOnlyList<Trial> history, IReadOnlyList<Assignment> running);
}

internal static class SeedStreams
{
    /// <summary>
    /// A random stream for one proposal, from the search's seed and a counter (SplitMix64's finaliser mixes them, so
    /// neighbouring counters give unrelated streams). System.Random with a seed is the same sequence on every run.
    /// </summary>
    public static Random For(int seed, int counter)
    {
        var z = unchecked(((ulong)(uint)seed << 32) + (ulong)(uint)counter + 0x9E3779B97F4A7C15UL);
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        return new Random((int)((z ^ (z >> 31)) & 0x7FFFFFFF));
    }
}
