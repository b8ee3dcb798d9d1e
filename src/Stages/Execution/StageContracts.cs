using System.Text.Json.Nodes;
using Mediator;

namespace Pipeline.Stages.Execution;

/// <summary>
/// A stage is a mediator request: its parameters (deserialised from the RunSpec) plus the <see cref="StageContext"/>
/// the engine hands it. Its handler does the science; the engine decides where and when it runs.
/// </summary>
public interface IStageRequest : IRequest<StageResult>
{
    StageContext Context { get; }
}

/// <summary>
/// A stage request with its parameters. The engine's pipeline behaviours read them before the handler runs: they
/// validate them (a handler never does) and apply the torch settings of <see cref="ITorchStageParams"/>.
/// </summary>
public interface IStageRequest<out TParams> : IStageRequest where TParams : IStageParams
{
    TParams Params { get; }
}

/// <summary>Names a stage kind, its Hangfire queue, and the code version that goes into its content key.</summary>
[AttributeUsage(AttributeTargets.Class, Inherited = false)]
public sealed class StageAttribute(string kind, string queue, int version) : Attribute
{
    public string Kind { get; } = kind;
    public string Queue { get; } = queue;

    /// <summary>Bump when the stage's output for the same inputs changes: it invalidates cached results.</summary>
    public int Version { get; } = version;
}

/// <summary>The queues stages run on (DESIGN.md): GPU work, CPU work, and the engine's own bookkeeping.</summary>
public static class StageQueues
{
    public const string Gpu = "gpu";
    public const string Cpu = "cpu";
    public const string Default = "default";
    public static readonly IReadOnlyList<string> All = [Gpu, Cpu, Default];
}

/// <summary>Stage parameters validate themselves; each error names the field (relative to <c>params</c>) and the fix.</summary>
public interface IStageParams
{
    IEnumerable<ValidationError> Validate();
}

/// <summary>
/// Parameters of a stage that computes with libtorch: where (<c>device</c>: auto, cpu or cuda) and with how many
/// threads (null: every core). One rule checks both (<see cref="TorchSettings"/>); the engine applies them.
/// </summary>
public interface ITorchStageParams : IStageParams
{
    string Device { get; }
    int? Threads { get; }
}

/// <summary>
/// Parameters that name data outside the artifact store (a dataset folder, IDX files) fingerprint it, so that a cached
/// result is not reused after that data changed (computed on the worker, just before the stage would run), and list
/// where it lives, so that a launcher can check it (runs launched through the web API may read only under
/// Pipeline:DataRoots).
/// </summary>
public interface IExternalInputs
{
    /// <summary>A stable text that changes when the external data changes (e.g. file names, sizes and times), or null.</summary>
    string? FingerprintExternalInputs();

    /// <summary>
    /// Every file or folder the stage would read outside the artifact store, defaults included, each with the field
    /// (relative to <c>params</c>, as in <see cref="ValidationError.Field"/>) that names it or whose default it is.
    /// </summary>
    IEnumerable<(string Field, string Path)> ExternalPaths();
}

public sealed record ValidationError(string Field, string Message)
{
    public override string ToString() => $"{Field}: {Message}";
}

/// <summary>What a finished stage leaves: its committed artifacts and a small JSON summary for `runs show`.</summary>
public sealed record StageResult(IReadOnlyList<Artifacts.ArtifactInfo> Artifacts, JsonObject? Summary = null);

/// <summary>
/// A stage failed because of its input or parameters (not a bug, not a crash): the message says the fix. Keep the
/// cause (<paramref name="inner"/>) when it is a store error: the engine re-runs the producer of a corrupt input.
/// </summary>
public sealed class StageInputException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Where a running stage reports progress and metrics; the engine stores them, rate-limited.</summary>
public interface IStageProgress
{
    /// <summary>Fraction done in [0, 1] and an optional short status ("train 3/8 shards").</summary>
    void Report(double fraction, string? message = null);

    /// <summary>A named metric value (loss, images/s, …) at an optional step.</summary>
    void Metric(string name, double value, long? step = null);
}

/// <summary>
/// The port a search trial's stage is given when its search prunes (asynchronous successive halving): at each of
/// <see cref="Rungs"/> the stage reports <see cref="Metric"/> (a field its summary would carry, e.g. <c>top1</c>) and
/// asks whether to go on. On "no" it keeps its checkpoint and throws <see cref="TrialPrunedException"/>.
/// </summary>
public interface ITrialPruning
{
    /// <summary>The steps (training steps for <c>train</c>) at which the stage reports, ascending.</summary>
    IReadOnlyList<long> Rungs { get; }

    string Metric { get; }

    /// <summary>Records the value at the rung and answers whether the trial continues; a repeated report gets the first answer.</summary>
    Task<bool> ShouldContinueAsync(long step, double value, CancellationToken ct);
}

/// <summary>A search stopped this trial at a rung: the stage ends Pruned (not Failed), with <paramref name="summary"/>.</summary>
public sealed class TrialPrunedException(long step, double value, JsonObject summary)
    : Exception($"pruned at step {step} with {value}: below the top of its rung")
{
    public long Step { get; } = step;
    public double Value { get; } = value;
    public JsonObject Summary { get; } = summary;
}

/// <summary>Progress nobody watches (benchmarks, tests that call a stage directly).</summary>
public sealed class NullStageProgress : IStageProgress
{
    public static readonly NullStageProgress Instance = new();

    public void Report(double fraction, string? message = null) { }

    public void Metric(string name, double value, long? step = null) { }
}
