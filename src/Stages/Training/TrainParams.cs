using System.Text.Json.Serialization;
using Pipeline.Stages.Execution;
using Pipeline.Stages.Models;

namespace Pipeline.Stages.Training;

/// <summary>
/// Parameters of the <c>train</c> stage. Every field has a default, so <c>{}</c> trains BaseNet for one epoch on the
/// shards of the stage it depends on. Defaults for the optimiser follow CONVRNN.md's searched configuration (SGD,
/// momentum 0.9, Nesterov, learning rate 0.0076, clipping ±0.32 by value, batch 64).
/// </summary>
public sealed record TrainParams : ITorchStageParams
{
    public ModelChoice Model { get; init; } = new();

    /// <summary>Square input size in pixels; null = the shards' short side (an error when they kept source sizes).</summary>
    public int? ImageSize { get; init; }

    /// <summary>Passes over the train split; the default when neither epochs nor steps is given is 1.</summary>
    public int? Epochs { get; init; }

    /// <summary>Total optimiser steps (overrides <see cref="Epochs"/>; the last epoch may be partial).</summary>
    public long? Steps { get; init; }

    public int BatchSize { get; init; } = 64;
    public OptimizerParams Optimizer { get; init; } = new();
    public ScheduleParams Schedule { get; init; } = new();
    public ClipParams Clip { get; init; } = new();
    public double LabelSmoothing { get; init; }

    /// <summary>Which logits the loss is computed on (CONVRNN.md leaves the paper's choice open).</summary>
    public LossOn LossOn { get; init; } = LossOn.LastStep;

    public AugmentationParams Augmentation { get; init; } = new();

    /// <summary>Per-channel mean and std after scaling pixels to [0, 1]; null = ImageNet's for colour, 0.5/0.25 for grey.</summary>
    public IReadOnlyList<float>? Mean { get; init; }

    public IReadOnlyList<float>? Std { get; init; }

    /// <summary>Seeds the initialisation, the shuffle and the augmentation; a resumed run continues the same streams.</summary>
    public long Seed { get; init; }

    /// <summary><c>auto</c> (CUDA when present), <c>cpu</c> or <c>cuda</c>.</summary>
    public string Device { get; init; } = "auto";

    /// <summary>Compute threads of libtorch; null = every core. Fix it for bit-identical resumes.</summary>
    public int? Threads { get; init; }

    /// <summary>Background threads decoding and augmenting images; they do not change the batches.</summary>
    public int DecodeThreads { get; init; } = 1;

    public int PrefetchBatches { get; init; } = 4;

    /// <summary>Evaluate on at most this many validation images (the first in shard order); null = all.</summary>
    public int? EvalMaxSamples { get; init; }

    public CheckpointParams Checkpoint { get; init; } = new();

    /// <summary>Train metrics are averaged and sent to the run store at most once per this many seconds (0 = every step).</summary>
    public double MetricsIntervalSeconds { get; init; } = 10;

    /// <summary>Stop with an error after this many consecutive steps whose loss is NaN or infinite.</summary>
    public int MaxNanSteps { get; init; } = 5;

    public IEnumerable<ValidationError> Validate()
    {
        foreach (var e in Model.Validate()) yield return e with { Field = "model." + e.Field };
        if (ImageSize is < 16 or > 1024) yield return new("image_size", $"must be between 16 and 1024 pixels (or null for the shards' short side); got {ImageSize}.");
        if (Epochs is < 1 or > 10_000) yield return new("epochs", $"must be between 1 and 10000; got {Epochs}.");
        if (Steps is < 1) yield return new("steps", $"must be at least 1; got {Steps}.");
        if (Epochs is not null && Steps is not null) yield return new("steps", "give either epochs or steps, not both.");
        if (BatchSize is < 1 or > 65_536) yield return new("batch_size", $"must be between 1 and 65536; got {BatchSize}.");
        foreach (var e in Optimizer.Validate()) yield return e with { Field = "optimizer." + e.Field };
        foreach (var e in Schedule.Validate()) yield return e with { Field = "schedule." + e.Field };
        foreach (var e in Clip.Validate()) yield return e with { Field = "clip." + e.Field };
        if (LabelSmoothing is < 0 or >= 1 || double.IsNaN(LabelSmoothing)) yield return new("label_smoothing", $"must be in [0, 1); got {LabelSmoothing}.");
        foreach (var e in Augmentation.Validate()) yield return e;
        if ((Mean is null) != (Std is null)) yield return new(Mean is null ? "mean" : "std", "give mean and std together (one value per channel), or neither.");
        if (Mean is not null && Std is not null && Mean.Count != Std.Count) yield return new("std", $"has {Std.Count} values but mean has {Mean.Count}; give one per channel.");
        if (Std?.Any(s => !(s > 0)) == true) yield return new("std", "every value must be positive.");
        if (Seed < 0) yield return new("seed", $"must be 0 or positive; got {Seed}.");
        foreach (var e in TorchSettings.Validate(this)) yield return e;
        if (DecodeThreads is < 1 or > 64) yield return new("decode_threads", $"must be between 1 and 64; got {DecodeThreads}.");
        if (PrefetchBatches is < 1 or > 64) yield return new("prefetch_batches", $"must be between 1 and 64; got {PrefetchBatches}.");
        if (EvalMaxSamples is < 1) yield return new("eval_max_samples", $"must be at least 1 (or null for the whole validation split); got {EvalMaxSamples}.");
        foreach (var e in Checkpoint.Validate()) yield return e with { Field = "checkpoint." + e.Field };
        if (MetricsIntervalSeconds is < 0 or > 3600 || double.IsNaN(MetricsIntervalSeconds))
            yield return new("metrics_interval_seconds", $"must be between 0 and 3600; got {MetricsIntervalSeconds}.");
        if (MaxNanSteps is < 1 or > 10_000) yield return new("max_nan_steps", $"must be between 1 and 10000; got {MaxNanSteps}.");
    }
}

/// <summary>
/// The model to train: a preset (with width, T and minimal-unroll choices) or a whole inline spec. Input size, classes
/// and input channels come from the shards unless given; a <c>classes</c> that differs from the shards' is an error.
/// </summary>
public sealed record ModelChoice
{
    /// <summary>A name of <see cref="ModelPresets.Names"/>; ignored when <see cref="Spec"/> is given.</summary>
    public string Preset { get; init; } = "basenet";

    public double? Width { get; init; }

    /// <summary>Train at the smallest T at which every parameter has been used (the paper's minimal-unroll control).</summary>
    public bool MinimalUnroll { get; init; }

    /// <summary>Overrides the preset's presentation (T and image-off step).</summary>
    public TimeSpec? Time { get; init; }

    /// <summary>Overrides the preset's readout (also what evaluation reports).</summary>
    public ReadoutSpec? Readout { get; init; }

    /// <summary>Overrides the preset's weight initialisation.</summary>
    public InitSpec? Init { get; init; }

    /// <summary>Overrides the preset's stem (<c>small</c> for inputs of 64 px and less; see <see cref="ModelSpec.Stem"/>).</summary>
    public StemKind? Stem { get; init; }

    /// <summary>Expected class count; must equal the shards' when given.</summary>
    public int? Classes { get; init; }

    /// <summary>A whole model spec instead of a preset.</summary>
    public ModelSpec? Spec { get; init; }

    public IEnumerable<ValidationError> Validate()
    {
        if (Spec is null && !ModelPresets.Names.Contains(Preset))
            yield return new("preset", $"'{Preset}' is not a model preset; presets: {string.Join(", ", ModelPresets.Names)}.");
        if (Width is <= 0 or > 16 || (Width is { } w && double.IsNaN(w))) yield return new("width", $"must be in (0, 16]; got {Width}.");
        if (Classes is < 2) yield return new("classes", $"must be at least 2; got {Classes}.");
        if (Spec is not null && (Width is not null || Time is not null || Readout is not null || Init is not null || Stem is not null || MinimalUnroll))
            yield return new("spec", "an inline spec carries its own width, time, readout, init, stem and minimal_unroll; remove those fields beside it.");
    }

    /// <summary>The spec to build for images of <paramref name="inputSize"/> px with the shards' classes and channels.</summary>
    public ModelSpec Resolve(int inputSize, int classes, int channels)
    {
        if (Classes is { } expected && expected != classes)
            throw new StageInputException($"model.classes is {expected} but the shards have {classes} classes. Set model.classes to {classes} (or remove it), or train on shards with {expected} classes.");
        if (Spec is { } inline)
        {
            if (inline.Classes != classes)
                throw new StageInputException($"model.spec.classes is {inline.Classes} but the shards have {classes} classes. Set it to {classes}.");
            if (inline.InChannels != channels)
                throw new StageInputException($"model.spec.in_channels is {inline.InChannels} but the shards' images have {channels} channel(s). Set it to {channels}.");
            return inline with { InputSize = inputSize };
        }
        var spec = ModelPresets.Load(Preset, inputSize, classes, Width) with { InChannels = channels };
        if (Time is not null) spec = spec with { Time = Time };
        if (Readout is not null) spec = spec with { Readout = Readout };
        if (Init is not null) spec = spec with { Init = Init };
        if (Stem is { } stem) spec = spec with { Stem = stem };
        return MinimalUnroll ? spec with { MinimalUnroll = true } : spec;
    }
}

public enum LossOn
{
    /// <summary>Cross-entropy on the logits of the last step.</summary>
    LastStep,

    /// <summary>Cross-entropy on the model's readout (e.g. a mean over a window of steps).</summary>
    Readout,

    /// <summary>The mean of the cross-entropies of every step's logits.</summary>
    AllSteps,
}

public enum OptimizerKind { Sgd, Adam, Adamw }

public sealed record OptimizerParams
{
    public OptimizerKind Kind { get; init; } = OptimizerKind.Sgd;
    public double LearningRate { get; init; } = 0.0076;
    public double Momentum { get; init; } = 0.9;
    public bool Nesterov { get; init; } = true;
    public double WeightDecay { get; init; } = 1e-4;
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.999;
    public double Eps { get; init; } = 1e-8;

    public IEnumerable<ValidationError> Validate()
    {
        if (!(LearningRate > 0 && LearningRate <= 10)) yield return new("learning_rate", $"must be in (0, 10]; got {LearningRate}.");
        if (Momentum is < 0 or >= 1 || double.IsNaN(Momentum)) yield return new("momentum", $"must be in [0, 1); got {Momentum}.");
        if (Kind == OptimizerKind.Sgd && Nesterov && Momentum == 0) yield return new("nesterov", "Nesterov needs momentum > 0; set momentum (e.g. 0.9) or nesterov: false.");
        if (WeightDecay is < 0 or > 1 || double.IsNaN(WeightDecay)) yield return new("weight_decay", $"must be in [0, 1]; got {WeightDecay}.");
        if (Beta1 is < 0 or >= 1 || double.IsNaN(Beta1)) yield return new("beta1", $"must be in [0, 1); got {Beta1}.");
        if (Beta2 is < 0 or >= 1 || double.IsNaN(Beta2)) yield return new("beta2", $"must be in [0, 1); got {Beta2}.");
        if (!(Eps > 0)) yield return new("eps", $"must be positive; got {Eps}.");
    }
}

public enum ScheduleKind { Constant, Step, Cosine }

/// <summary>
/// Learning rate as a pure function of the optimiser step (<see cref="LearningRateAt"/>): linear warm-up, then
/// constant, step decay or cosine to <see cref="MinLearningRate"/>. Being a function of the step alone, it needs no
/// state in checkpoints — TorchSharp's schedulers have no state dict and would have to be stepped again on resume.
/// </summary>
public sealed record ScheduleParams
{
    public ScheduleKind Kind { get; init; } = ScheduleKind.Constant;
    public long WarmupSteps { get; init; }

    /// <summary>Step schedule: multiply by <see cref="Gamma"/> every this many epochs.</summary>
    public double StepEpochs { get; init; } = 30;

    public double Gamma { get; init; } = 0.1;
    public double MinLearningRate { get; init; }

    public IEnumerable<ValidationError> Validate()
    {
        if (WarmupSteps < 0) yield return new("warmup_steps", $"must be 0 or positive; got {WarmupSteps}.");
        if (!(StepEpochs > 0)) yield return new("step_epochs", $"must be positive; got {StepEpochs}.");
        if (Gamma is <= 0 or > 1 || double.IsNaN(Gamma)) yield return new("gamma", $"must be in (0, 1]; got {Gamma}.");
        if (MinLearningRate < 0 || double.IsNaN(MinLearningRate)) yield return new("min_learning_rate", $"must be 0 or positive; got {MinLearningRate}.");
    }

    public double LearningRateAt(long step, long totalSteps, int stepsPerEpoch, double baseRate)
    {
        if (step < WarmupSteps) return baseRate * (step + 1) / WarmupSteps;
        return Kind switch
        {
            ScheduleKind.Step => baseRate * Math.Pow(Gamma, Math.Floor(step / (StepEpochs * stepsPerEpoch))),
            ScheduleKind.Cosine => MinLearningRate + ((baseRate - MinLearningRate) * 0.5 *
                (1 + Math.Cos(Math.PI * (step - WarmupSteps) / Math.Max(1, totalSteps - WarmupSteps)))),
            _ => baseRate,
        };
    }
}

/// <summary>Gradient clipping: each component to ±<see cref="Value"/>, and/or the global norm to <see cref="Norm"/>.</summary>
public sealed record ClipParams
{
    public double? Value { get; init; } = 0.32;
    public double? Norm { get; init; }

    public IEnumerable<ValidationError> Validate()
    {
        if (Value is { } v && !(v > 0)) yield return new("value", $"must be positive (or null for no clipping by value); got {v}.");
        if (Norm is { } n && !(n > 0)) yield return new("norm", $"must be positive (or null for no clipping by norm); got {n}.");
    }
}

/// <summary>Checkpoints go to the stage's <c>checkpoints/</c> folder every few minutes, every N steps when set, at each
/// epoch end, and when the stage is cancelled or its worker stops.</summary>
public sealed record CheckpointParams
{
    public double EveryMinutes { get; init; } = 10;

    /// <summary>Also checkpoint every this many steps (tests, very slow steps); null = by time only.</summary>
    public long? EverySteps { get; init; }

    /// <summary>How many checkpoints to keep (the newest) while training.</summary>
    public int Keep { get; init; } = 3;

    /// <summary>How many to keep once the stage has written its model: none by default (the model is the result).</summary>
    public int KeepFinal { get; init; }

    public IEnumerable<ValidationError> Validate()
    {
        if (!(EveryMinutes > 0 && EveryMinutes <= 24 * 60)) yield return new("every_minutes", $"must be in (0, 1440]; got {EveryMinutes}.");
        if (EverySteps is < 1) yield return new("every_steps", $"must be at least 1 (or null); got {EverySteps}.");
        if (Keep is < 1 or > 100) yield return new("keep", $"must be between 1 and 100; got {Keep}. Keep at least 2 so a corrupt newest checkpoint has a fallback.");
        if (KeepFinal < 0 || KeepFinal > Keep) yield return new("keep_final", $"must be between 0 and keep ({Keep}); got {KeepFinal}.");
    }

    [JsonIgnore]
    public TimeSpan Interval => TimeSpan.FromMinutes(EveryMinutes);
}
