using Pipeline.Stages.Execution;

namespace Pipeline.Stages.Training;

/// <summary>Which training augmentation a run uses; JSON <c>"none"</c>, <c>"natural"</c> or <c>"occluders"</c>.</summary>
public enum AugmentationKind
{
    /// <summary>The eval transform only.</summary>
    None,

    /// <summary>Random-resized crop (torchvision semantics) then a horizontal flip: the ImageNet training recipe.</summary>
    Natural,

    /// <summary>The eval transform, a horizontal flip, then 1..N grey rectangles drawn over the image.</summary>
    Occluders,
}

/// <summary>
/// How training images are augmented and how eval images are framed. Part of the train stage's params (deserialized
/// with <see cref="PipelineJson.Options"/>: snake_case, unknown fields are errors).
/// </summary>
public sealed record AugmentationParams
{
    public AugmentationKind Kind { get; init; } = AugmentationKind.None;

    /// <summary>Natural: the crop's area as a fraction of the image, drawn uniformly in [min_scale, max_scale].</summary>
    public double MinScale { get; init; } = 0.08;

    public double MaxScale { get; init; } = 1.0;

    /// <summary>Natural: the crop's width/height, drawn log-uniformly in [min_ratio, max_ratio].</summary>
    public double MinRatio { get; init; } = 3.0 / 4.0;

    public double MaxRatio { get; init; } = 4.0 / 3.0;

    /// <summary>Natural and occluders: mirror left-right with p = 0.5.</summary>
    public bool Flip { get; init; } = true;

    /// <summary>Occluders: each image gets 1..max_occluders rectangles.</summary>
    public int MaxOccluders { get; init; } = 3;

    /// <summary>Occluders: the largest fraction of the image one rectangle may cover.</summary>
    public double MaxOccluderArea { get; init; } = 0.15;

    /// <summary>
    /// Eval / none transform: resize the short side to round(image_size / eval_crop_fraction), then centre-crop
    /// image_size x image_size (ImageNet: 0.875 → 256/224). 1.0 resizes the short side to image_size and centre-crops.
    /// </summary>
    public double EvalCropFraction { get; init; } = 1.0;

    /// <summary>Errors name the field with <paramref name="prefix"/>, e.g. <c>augmentation.min_scale</c>, and say the fix.</summary>
    public IEnumerable<ValidationError> Validate(string prefix = "augmentation")
    {
        var p = string.IsNullOrEmpty(prefix) ? "" : prefix + ".";
        if (!Enum.IsDefined(Kind))
            yield return new(p + "kind", $"must be 'none', 'natural' or 'occluders', got {(int)Kind}.");
        if (!InUnitInterval(MinScale))
            yield return new(p + "min_scale", $"must be in (0, 1], got {MinScale}. 0.08 is the ImageNet default.");
        if (!InUnitInterval(MaxScale))
            yield return new(p + "max_scale", $"must be in (0, 1], got {MaxScale}. 1.0 is the ImageNet default.");
        else if (InUnitInterval(MinScale) && MaxScale < MinScale)
            yield return new(p + "max_scale", $"must be at least min_scale ({MinScale}), got {MaxScale}; swap the two.");
        if (!(MinRatio > 0) || double.IsInfinity(MinRatio))
            yield return new(p + "min_ratio", $"must be a positive width/height ratio, got {MinRatio}. 0.75 (3/4) is the ImageNet default.");
        if (!(MaxRatio > 0) || double.IsInfinity(MaxRatio))
            yield return new(p + "max_ratio", $"must be a positive width/height ratio, got {MaxRatio}. 1.333 (4/3) is the ImageNet default.");
        else if (MinRatio > 0 && MaxRatio < MinRatio)
            yield return new(p + "max_ratio", $"must be at least min_ratio ({MinRatio}), got {MaxRatio}; swap the two.");
        if (MaxOccluders is < 1 or > 64)
            yield return new(p + "max_occluders", $"must be between 1 and 64, got {MaxOccluders}.");
        if (!InUnitInterval(MaxOccluderArea))
            yield return new(p + "max_occluder_area", $"must be in (0, 1] (a fraction of the image), got {MaxOccluderArea}.");
        if (!InUnitInterval(EvalCropFraction))
            yield return new(p + "eval_crop_fraction", $"must be in (0, 1], got {EvalCropFraction}. Use 0.875 for the ImageNet 256→224 crop, 1.0 for no margin.");
    }

    // NaN fails both comparisons, so it is rejected too.
    private static bool InUnitInterval(double v) => v > 0 && v <= 1;
}

/// <summary>Per-channel mean/std applied after scaling pixels to [0, 1]: <c>(x - mean) / std</c>.</summary>
public sealed record ImageNormalization(IReadOnlyList<float> Mean, IReadOnlyList<float> Std)
{
    /// <summary>The ImageNet RGB statistics every torchvision model was trained with.</summary>
    public static ImageNormalization ImageNet { get; } = new([0.485f, 0.456f, 0.406f], [0.229f, 0.224f, 0.225f]);

    /// <summary>
    /// 3 channels: <see cref="ImageNet"/>. 1 channel: mean 0.5, std 0.25, which maps [0, 1] to [-2, 2] — roughly unit
    /// variance for grey images without assuming a dataset (Fashion-MNIST's own statistics are 0.29 / 0.35).
    /// </summary>
    public static ImageNormalization Default(int channels) => channels switch
    {
        3 => ImageNet,
        1 => new([0.5f], [0.25f]),
        _ => throw new ArgumentOutOfRangeException(nameof(channels), channels, "must be 1 or 3"),
    };
}
