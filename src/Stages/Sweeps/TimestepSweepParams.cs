using Pipeline.Stages.Execution;
using Pipeline.Stages.Models;

namespace Pipeline.Stages.Sweeps;

/// <summary>
/// Parameters of the <c>timestep-sweep</c> stage. The stage depends on the train stage of the model it sweeps, on the
/// shard stage that model was trained on (its validation split is evaluated), and on the train stages named in
/// <see cref="Baselines"/>, drawn as reference lines.
/// </summary>
public sealed record TimestepSweepParams : ITorchStageParams
{
    private static readonly ReadoutSpec DefaultReadout = new();

    /// <summary>The dependency (a train stage) whose model is swept; null = the only train dependency not in <see cref="Baselines"/>.</summary>
    public string? Model { get; init; }

    /// <summary>Further train dependencies evaluated once each (their own T and readout) and drawn as horizontal lines.</summary>
    public IReadOnlyList<string> Baselines { get; init; } = [];

    /// <summary>The longest unroll of the unroll-length sweep; null = 2 × the training T.</summary>
    public int? MaxSteps { get; init; }

    /// <summary>Evaluate only the first N validation images (null: all of them).</summary>
    public int? EvalMaxSamples { get; init; }

    /// <summary>The probability the threshold readout waits for (the readout rule "first step over a threshold").</summary>
    public double Threshold { get; init; } = DefaultReadout.Threshold;

    public int BatchSize { get; init; } = 64;

    public int DecodeThreads { get; init; } = 1;

    /// <summary><c>auto</c> (CUDA when present), <c>cpu</c> or <c>cuda</c>.</summary>
    public string Device { get; init; } = "auto";

    /// <summary>libtorch compute threads; null = every core.</summary>
    public int? Threads { get; init; }

    public IEnumerable<ValidationError> Validate()
    {
        if (Model is { } model && string.IsNullOrWhiteSpace(model)) yield return new("model", "is empty; name the train stage to sweep or remove it.");
        if (Model is { } m && Baselines.Contains(m)) yield return new("baselines", $"holds the swept model '{m}'; a baseline is another trained model.");
        if (Baselines.Any(string.IsNullOrWhiteSpace)) yield return new("baselines", "holds an empty name.");
        foreach (var dup in Baselines.GroupBy(b => b).Where(g => g.Count() > 1)) yield return new("baselines", $"names '{dup.Key}' twice.");
        if (MaxSteps is < 1 or > 256) yield return new("max_steps", $"must be between 1 and 256 (or null for 2 × the training T); got {MaxSteps}.");
        if (EvalMaxSamples is < 1) yield return new("eval_max_samples", $"must be at least 1 (or null for the whole validation split); got {EvalMaxSamples}.");
        if (!(Threshold is > 0 and <= 1)) yield return new("threshold", $"must be in (0, 1]; got {Threshold}.");
        if (BatchSize is < 1 or > 4096) yield return new("batch_size", $"must be between 1 and 4096; got {BatchSize}.");
        if (DecodeThreads is < 1 or > 64) yield return new("decode_threads", $"must be between 1 and 64; got {DecodeThreads}.");
        foreach (var e in TorchSettings.Validate(this)) yield return e;
    }
}
