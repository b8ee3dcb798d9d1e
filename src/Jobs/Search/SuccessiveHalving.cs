// Asynchronous successive halving (ASHA; Li et al. 2020, "A System for Massively Parallel Hyperparameter Tuning"),
// with the promotion rule of Optuna's SuccessiveHalvingPruner (optuna/pruners/_successive_halving.py), written here
// from that published rule, not copied. No .NET library on the package feed provides it.
using Pipeline.Stages.Execution;

namespace Pipeline.Jobs.Search;

/// <summary>
/// Where a trial is judged and whether it goes on. Rung k sits at <c>min_steps · η^k</c> training steps (η =
/// <c>reduction_factor</c>), for every such step below <c>max_steps</c> (at max_steps the trial is finished, not judged).
/// At a rung, a trial's value is compared with the values earlier trials recorded at that rung, itself included
/// (n values): it continues iff it is at least as good as the ⌊n/η⌋-th best of them — that is, among the top 1/η, ties
/// kept. While n &lt; η (⌊n/η⌋ = 0) it must be the best so far: the first trial at a rung always continues, and with
/// η = 4 the second continues only if it beats the first. A NaN value (a diverged model) is pruned.
/// </summary>
public sealed record SuccessiveHalving
{
    public required int MinSteps { get; init; }
    public required int MaxSteps { get; init; }

    /// <summary>η: each rung keeps about 1/η of the trials that reach it.</summary>
    public int ReductionFactor { get; init; } = 4;

    public IEnumerable<ValidationError> Validate()
    {
        if (MinSteps < 1) yield return new("min_steps", $"must be at least 1, got {MinSteps}");
        if (MaxSteps <= MinSteps) yield return new("max_steps", $"must be above min_steps so that there is a rung (got {MaxSteps} ≤ {MinSteps})");
        if (ReductionFactor < 2) yield return new("reduction_factor", $"must be at least 2, got {ReductionFactor}");
    }

    /// <summary>The training steps at which trials are judged, in order.</summary>
    public IReadOnlyList<int> Rungs()
    {
        var rungs = new List<int>();
        for (long step = MinSteps; step < MaxSteps; step *= ReductionFactor) rungs.Add((int)step);
        return rungs;
    }

    /// <summary>The rung index judged at exactly this step, or null when the step is not a rung.</summary>
    public int? RungAt(int step) => Rungs().ToList().IndexOf(step) is var k and >= 0 ? k : null;

    /// <summary>
    /// Whether a trial with <paramref name="value"/> at a rung continues to the next, given the values other trials
    /// recorded at the same rung before it (the caller records this value at the rung either way).
    /// </summary>
    public bool ShouldContinue(IReadOnlyCollection<double> recordedAtRung, double value, ObjectiveDirection direction)
    {
        if (double.IsNaN(value)) return false;
        var competing = recordedAtRung.Where(v => !double.IsNaN(v)).Append(value).ToList();
        var kept = Math.Max(competing.Count / ReductionFactor, 1);
        var bar = direction == ObjectiveDirection.Maximize
            ? competing.OrderByDescending(v => v).ElementAt(kept - 1)
            : competing.OrderBy(v => v).ElementAt(kept - 1);
        return direction == ObjectiveDirection.Maximize ? value >= bar : value <= bar;
    }
}
