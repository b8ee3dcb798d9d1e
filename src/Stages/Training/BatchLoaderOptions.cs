using Pipeline.Stages.Data;

namespace Pipeline.Stages.Training;

/// <summary>What a <see cref="BatchLoader"/> produces: which split, how batched, transformed and ordered.</summary>
public sealed record BatchLoaderOptions
{
    public required ShardSplitName Split { get; init; }
    public required int BatchSize { get; init; }

    /// <summary>Output images are square, <c>ImageSize × ImageSize</c>.</summary>
    public required int ImageSize { get; init; }

    /// <summary>1 or 3, with <see cref="ImageCodec.DecodeChw"/> semantics (luma of colour, or grey replicated).</summary>
    public required int Channels { get; init; }

    public required ImageNormalization Normalization { get; init; }

    /// <summary>Applied only when <see cref="Train"/> is true; its eval_crop_fraction frames eval images.</summary>
    public AugmentationParams Augmentation { get; init; } = new();

    /// <summary>True: augmentation; false: the eval transform, with no randomness.</summary>
    public bool Train { get; init; }

    public required long Seed { get; init; }
    public int Epoch { get; init; }

    /// <summary>Resume: the first batch index of the epoch to produce.</summary>
    public int StartBatch { get; init; }

    public bool Shuffle { get; init; }
    public bool DropLast { get; init; }

    /// <summary>Use only the first N samples of the epoch order (eval subsets, smoke runs).</summary>
    public int? MaxSamples { get; init; }

    /// <summary>Threads decoding and augmenting; does not change the output.</summary>
    public int DecodeThreads { get; init; } = 1;

    /// <summary>Capacity of the bounded queue between the decoding threads and the trainer, in batches.</summary>
    public int PrefetchBatches { get; init; } = 4;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first bad option and its allowed range.</summary>
    public void Check()
    {
        static void Fail(string option, string message) => throw new ArgumentException($"{option}: {message}", option);
        if (!Enum.IsDefined(Split)) Fail(nameof(Split), $"must be Train or Val, got {(int)Split}.");
        if (BatchSize < 1) Fail(nameof(BatchSize), $"must be at least 1, got {BatchSize}.");
        if (ImageSize < 8) Fail(nameof(ImageSize), $"must be at least 8 pixels, got {ImageSize}.");
        if (Channels is not (1 or 3)) Fail(nameof(Channels), $"must be 1 (grey) or 3 (RGB), got {Channels}.");
        if (Normalization is not { Mean: { } mean, Std: { } std })
            throw new ArgumentException($"{nameof(Normalization)}: is required with mean and std; use ImageNormalization.Default(channels).", nameof(Normalization));
        if (mean.Count != Channels) Fail(nameof(Normalization), $"mean has {mean.Count} values but there are {Channels} channels.");
        if (std.Count != Channels) Fail(nameof(Normalization), $"std has {std.Count} values but there are {Channels} channels.");
        if (std.Any(s => !(s > 0) || float.IsInfinity(s)))
            Fail(nameof(Normalization), $"every std must be positive and finite, got [{string.Join(", ", std)}].");
        if (mean.Any(m => !float.IsFinite(m)))
            Fail(nameof(Normalization), $"every mean must be finite, got [{string.Join(", ", mean)}].");
        if (Augmentation is null) Fail(nameof(Augmentation), "must not be null; use new AugmentationParams() for none.");
        var errors = Augmentation!.Validate().ToList();
        if (errors.Count > 0) Fail(nameof(Augmentation), string.Join("; ", errors));
        if (Epoch < 0) Fail(nameof(Epoch), $"must be 0 or positive, got {Epoch}.");
        if (StartBatch < 0) Fail(nameof(StartBatch), $"must be 0 or positive, got {StartBatch}.");
        if (MaxSamples is < 1) Fail(nameof(MaxSamples), $"must be at least 1, or null for the whole split; got {MaxSamples}.");
        if (DecodeThreads < 1) Fail(nameof(DecodeThreads), $"must be at least 1, got {DecodeThreads}.");
        if (PrefetchBatches < 1) Fail(nameof(PrefetchBatches), $"must be at least 1, got {PrefetchBatches}.");
    }
}

/// <summary>
/// One batch: <see cref="Images"/> is channel-major float32 of shape <c>[Count, Channels, ImageSize, ImageSize]</c>,
/// already normalized. <see cref="Index"/> is the batch index within the epoch; <see cref="Keys"/> the WebDataset keys.
/// </summary>
public sealed record TrainingBatch(float[] Images, long[] Labels, string[] Keys, int Count, int Index);
