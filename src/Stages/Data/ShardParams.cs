using System.Text.Json.Serialization;
using Pipeline.Stages.Execution;

namespace Pipeline.Stages.Data;

public enum ShardSourceKind
{
    Synthetic,
    FashionMnist,
    Folder,
}

public enum ShardImageFormat
{
    Png,
    Jpg,
}

/// <summary>
/// Parameters of the <c>shard</c> stage. Every field has a default, so <c>{}</c> shards the built-in synthetic set.
/// </summary>
public sealed record ShardParams : IStageParams, IExternalInputs
{
    public const long DefaultShardMaxBytes = 64L << 20;

    public ShardSourceParams Source { get; init; } = new();

    /// <summary>Seeds the train shuffle, the folder train/val split and the synthetic images.</summary>
    public long Seed { get; init; }

    /// <summary>Resize so the shorter side has this many pixels; null or 0 keeps the source size.</summary>
    public int? ShortSide { get; init; }

    public ShardImageFormat ImageFormat { get; init; } = ShardImageFormat.Png;

    /// <summary>Only for <c>image_format: jpg</c>; null means 90.</summary>
    public int? JpegQuality { get; init; }

    public long ShardMaxBytes { get; init; } = DefaultShardMaxBytes;

    /// <summary>Optional cap on samples per shard, on top of <see cref="ShardMaxBytes"/>.</summary>
    public int? ShardMaxSamples { get; init; }

    /// <summary>How many skipped files the manifest lists by name (all are counted).</summary>
    public int MaxListedSkips { get; init; } = 100;

    /// <summary>Encoding threads; null or 0 uses every core. Does not change the output.</summary>
    public int? Threads { get; init; }

    [JsonIgnore]
    public int EffectiveJpegQuality => JpegQuality ?? 90;

    [JsonIgnore]
    public int? EffectiveShortSide => ShortSide is null or 0 ? null : ShortSide;

    /// <summary>
    /// Folder and Fashion-MNIST sources: every file's relative path, size and modification time under the source path,
    /// hashed (cheap next to sharding). The synthetic source has no external data.
    /// </summary>
    public string? FingerprintExternalInputs()
    {
        if (Source is null || Source.Kind == ShardSourceKind.Synthetic) return null;
        return ExternalFiles.Fingerprint(Source.EffectivePath);
    }

    /// <summary>The folder (or Fashion-MNIST's, by default Debian's /usr/share/datasets/fashion-mnist); none for synthetic.</summary>
    public IEnumerable<(string Field, string Path)> ExternalPaths()
    {
        if (Source is null || Source.Kind == ShardSourceKind.Synthetic || Source.EffectivePath.Length == 0) yield break;
        yield return ("source.path", Source.EffectivePath);
    }

    public IEnumerable<ValidationError> Validate()
    {
        if (Seed < 0) yield return new("seed", $"must be 0 or positive, got {Seed}.");
        if (ShortSide is < 0 or > 8192)
            yield return new("short_side", $"must be between 8 and 8192 pixels, or null/0 to keep the source size; got {ShortSide}.");
        else if (ShortSide is > 0 and < 8)
            yield return new("short_side", $"must be at least 8 pixels (or null/0 to keep the source size); got {ShortSide}.");
        if (JpegQuality is not null && ImageFormat != ShardImageFormat.Jpg)
            yield return new("jpeg_quality", "only applies to image_format 'jpg'; remove it or set image_format to 'jpg'.");
        if (JpegQuality is < 1 or > 100)
            yield return new("jpeg_quality", $"must be between 1 and 100, got {JpegQuality}.");
        if (ShardMaxBytes < 4096)
            yield return new("shard_max_bytes", $"must be at least 4096 bytes (default {DefaultShardMaxBytes} = 64 MiB), got {ShardMaxBytes}.");
        if (ShardMaxSamples is < 1)
            yield return new("shard_max_samples", $"must be at least 1, or null for no sample limit; got {ShardMaxSamples}.");
        if (MaxListedSkips < 0)
            yield return new("max_listed_skips", $"must be 0 or positive, got {MaxListedSkips}.");
        if (Threads is < 0)
            yield return new("threads", $"must be 0 (all cores) or positive, got {Threads}.");
        if (Source is null)
        {
            yield return new("source", "is required; give at least {\"kind\": \"synthetic\"}.");
            yield break;
        }
        foreach (var e in Source.Validate()) yield return e with { Field = "source." + e.Field };
    }
}

/// <summary>
/// Where the images come from. Fields that belong to one kind only are nullable: null means that kind's default, and
/// setting one for another kind is an error (so a misplaced option is never silently ignored).
/// </summary>
public sealed record ShardSourceParams
{
    public const string DefaultFashionMnistPath = "/usr/share/datasets/fashion-mnist";
    public const int MaxSyntheticClasses = SyntheticOccludedObjects.MaxClasses;

    public ShardSourceKind Kind { get; init; } = ShardSourceKind.Synthetic;

    /// <summary>Folder root (required for <c>folder</c>) or the Fashion-MNIST folder.</summary>
    public string? Path { get; init; }

    /// <summary>Folder without train/val subfolders: the fraction of each class held out for val (default 0.1).</summary>
    public double? ValFraction { get; init; }

    /// <summary>Fashion-MNIST: take only the first N train / val (t10k) images.</summary>
    public int? LimitTrain { get; init; }

    public int? LimitVal { get; init; }

    // Synthetic occluded objects.
    public int? NumClasses { get; init; }
    public int? ImageSize { get; init; }
    public int? TrainCount { get; init; }
    public int? ValCount { get; init; }

    /// <summary>Fraction of the object's area covered by occluders, 0..0.9.</summary>
    public double? Occlusion { get; init; }

    /// <summary>Number of distractor fragments behind the object.</summary>
    public int? Clutter { get; init; }

    /// <summary>Minimum luma difference (0..1) between every object colour and the background and occluders
    /// (<see cref="ContrastPalette"/>), so the shape is always visible; 0 draws every colour independently (the hard set).</summary>
    public double? MinContrast { get; init; }

    [JsonIgnore]
    public string EffectivePath => Path ?? (Kind == ShardSourceKind.FashionMnist ? DefaultFashionMnistPath : "");
    [JsonIgnore]
    public double EffectiveValFraction => ValFraction ?? 0.1;
    [JsonIgnore]
    public int EffectiveNumClasses => NumClasses ?? 10;
    [JsonIgnore]
    public int EffectiveImageSize => ImageSize ?? 64;
    [JsonIgnore]
    public int EffectiveTrainCount => TrainCount ?? 2000;
    [JsonIgnore]
    public int EffectiveValCount => ValCount ?? 500;
    [JsonIgnore]
    public double EffectiveOcclusion => Occlusion ?? 0.3;
    [JsonIgnore]
    public int EffectiveClutter => Clutter ?? 3;
    [JsonIgnore]
    public double EffectiveMinContrast => MinContrast ?? DefaultMinContrast;

    /// <summary>A luma step anyone sees at a glance (e.g. mid-grey on white is 0.5).</summary>
    public const double DefaultMinContrast = 0.3;

    /// <summary>These params with the defaults of this kind filled in (what the manifest records).</summary>
    public ShardSourceParams Resolved() => Kind switch
    {
        ShardSourceKind.Synthetic => this with
        {
            NumClasses = EffectiveNumClasses,
            ImageSize = EffectiveImageSize,
            TrainCount = EffectiveTrainCount,
            ValCount = EffectiveValCount,
            Occlusion = EffectiveOcclusion,
            Clutter = EffectiveClutter,
            MinContrast = EffectiveMinContrast,
        },
        ShardSourceKind.FashionMnist => this with { Path = EffectivePath },
        _ => this with { ValFraction = EffectiveValFraction },
    };

    public IEnumerable<ValidationError> Validate()
    {
        var kind = PipelineKindName(Kind);
        if (Kind == ShardSourceKind.Folder && string.IsNullOrWhiteSpace(Path))
            yield return new("path", "is required for kind 'folder': the dataset root holding train/ and val/ (or one folder per class).");
        if (Kind == ShardSourceKind.Synthetic && Path is not null)
            yield return new("path", "does not apply to kind 'synthetic'; remove it.");

        if (ValFraction is not null && Kind != ShardSourceKind.Folder)
            yield return new("val_fraction", $"only applies to kind 'folder', not '{kind}'; remove it.");
        if (ValFraction is < 0 or > 0.9 || (ValFraction is { } vf && double.IsNaN(vf)))
            yield return new("val_fraction", $"must be between 0 and 0.9, got {ValFraction}.");

        foreach (var (name, value) in new[] { ("limit_train", LimitTrain), ("limit_val", LimitVal) })
        {
            if (value is null) continue;
            if (Kind != ShardSourceKind.FashionMnist)
                yield return new(name, $"only applies to kind 'fashion_mnist', not '{kind}'; remove it.");
            else if (value < 0)
                yield return new(name, $"must be 0 or positive (null = all), got {value}.");
        }

        var synthetic = new (string Name, object? Value)[]
        {
            ("num_classes", NumClasses), ("image_size", ImageSize), ("train_count", TrainCount),
            ("val_count", ValCount), ("occlusion", Occlusion), ("clutter", Clutter), ("min_contrast", MinContrast),
        };
        if (Kind != ShardSourceKind.Synthetic)
        {
            foreach (var (name, value) in synthetic)
                if (value is not null) yield return new(name, $"only applies to kind 'synthetic', not '{kind}'; remove it.");
            yield break;
        }
        if (NumClasses is < 2 or > MaxSyntheticClasses)
            yield return new("num_classes", $"must be between 2 and {MaxSyntheticClasses} (12 shapes x 4 textures), got {NumClasses}.");
        if (ImageSize is < 16 or > 2048)
            yield return new("image_size", $"must be between 16 and 2048 pixels, got {ImageSize}.");
        if (TrainCount is < 1)
            yield return new("train_count", $"must be at least 1, got {TrainCount}.");
        if (ValCount is < 0)
            yield return new("val_count", $"must be 0 or positive, got {ValCount}.");
        if (Occlusion is < 0 or > 0.9 || (Occlusion is { } o && double.IsNaN(o)))
            yield return new("occlusion", $"must be between 0 and 0.9 (fraction of the object covered), got {Occlusion}.");
        if (Clutter is < 0 or > 64)
            yield return new("clutter", $"must be between 0 and 64 distractor fragments, got {Clutter}.");
        if (MinContrast is < 0 or > ContrastPalette.MaxContrast || (MinContrast is { } c && double.IsNaN(c)))
            yield return new("min_contrast", $"must be between 0 (colours drawn independently) and {ContrastPalette.MaxContrast} (luma difference between the object and the background and occluders), got {MinContrast}.");
    }

    internal static string PipelineKindName(ShardSourceKind kind) => kind switch
    {
        ShardSourceKind.Synthetic => "synthetic",
        ShardSourceKind.FashionMnist => "fashion_mnist",
        ShardSourceKind.Folder => "folder",
        _ => kind.ToString(),
    };
}
