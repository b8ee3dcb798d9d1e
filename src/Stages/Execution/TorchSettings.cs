using TorchSharp;

namespace Pipeline.Stages.Execution;

/// <summary>The one rule for <see cref="ITorchStageParams"/>, and where a stage's thread count is applied.</summary>
/// <remarks>
/// libtorch's thread count is not a stage's: <c>set_num_threads</c> sets a process-wide default that a thread picks up
/// the first time it runs a torch op, and changes the OpenMP setting of the calling thread only (measured here: after
/// an <c>await</c>, a continuation on another pool thread reads the count that thread was given before). Applying it
/// where the stage starts (each torch handler's first line) is therefore a request, not a guarantee, and two torch
/// stages in one process (<c>--workers 2</c>) can see each other's count. Run one worker process per GPU (or per CPU
/// job) until the count is a setting of the process.
/// </remarks>
public static class TorchSettings
{
    public static IEnumerable<ValidationError> Validate(ITorchStageParams p)
    {
        if (p.Device is not ("auto" or "cpu" or "cuda")) yield return new("device", $"must be 'auto', 'cpu' or 'cuda'; got '{p.Device}'.");
        if (p.Threads is < 1 or > 256) yield return new("threads", $"must be between 1 and 256 (or null for every core); got {p.Threads}.");
    }

    /// <summary>Sets libtorch's thread count for the stage starting on this thread (null: leave the process's count).</summary>
    public static void Apply(ITorchStageParams p)
    {
        if (p.Threads is { } threads) torch.set_num_threads(threads);
    }
}
