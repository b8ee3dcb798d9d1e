using Pipeline.Stages.Execution;

namespace Pipeline.Stages.NeuralFit;

/// <summary>
/// Parameters of the <c>neural-fit</c> stage. The model comes from the train stage it depends on; the neural data from
/// a <c>virtual-monkey</c> stage it depends on, or from <see cref="Path"/>. Defaults follow Brain-Score (PLS with 25
/// components, 10 stratified 90/10 splits, split-half ceiling) and CONVRNN.md (bins 70–260 ms, step t ↔ [10t, 10t+10) ms).
/// </summary>
public sealed record NeuralFitParams : ITorchStageParams, IExternalInputs
{
    private static readonly RegressionOptions Defaults = new();

    /// <summary>A Brain-Score-style NetCDF4 file or a plain-format folder (see <see cref="NeuralDataReader"/>); null =
    /// the dataset of a virtual-monkey dependency.</summary>
    public string? Path { get; init; }

    /// <summary>The stimulus images (folder or tar); null = <c>images/</c> or <c>images.tar</c> beside <see cref="Path"/>.</summary>
    public string? ImagesPath { get; init; }

    /// <summary>Areas to fit (V4, IT, pIT, cIT, aIT; IT includes its sub-regions); null = every region in the data.</summary>
    public IReadOnlyList<string>? Regions { get; init; }

    /// <summary>Model layers to fit; null = all of them.</summary>
    public IReadOnlyList<string>? Layers { get; init; }

    /// <summary>Fit the data's bins that lie within [from, to) ms (bins outside the data are simply absent).</summary>
    public int BinsFromMs { get; init; } = 70;

    public int BinsToMs { get; init; } = 260;

    public IReadOnlyList<RegressionKind> Methods { get; init; } = [RegressionKind.Pls];

    public int PlsComponents { get; init; } = Defaults.PlsComponents;
    public int Splits { get; init; } = Defaults.Splits;
    public double TestFraction { get; init; } = Defaults.TestFraction;

    /// <summary>Ridge: inner folds that choose each site's penalty on the training stimuli.</summary>
    public int InnerFolds { get; init; } = Defaults.InnerFolds;

    /// <summary>Random halvings of the repetitions averaged by the split-half ceiling.</summary>
    public int Halvings { get; init; } = 10;

    /// <summary>The default of <see cref="MinCeiling"/>: a reliability of 0.1 turns a raw r of 0.05 into 0.5.</summary>
    public const double DefaultMinCeiling = 0.1;

    /// <summary>
    /// A bin whose noise ceiling (the area's split-half reliability there) is below this is not trusted: dividing by a
    /// ceiling near 0 gives noise-corrected values such as −5 or 2.6. Such bins are drawn greyed, flagged in the tables
    /// (<c>below_min_ceiling</c>) and left out of the best-layer choice.
    /// </summary>
    public double MinCeiling { get; init; } = DefaultMinCeiling;

    public FeatureParams Features { get; init; } = new();

    /// <summary>Stimuli per forward pass.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Seeds the splits, the halvings and the PCA image set.</summary>
    public long Seed { get; init; }

    /// <summary><c>auto</c> (CUDA when present), <c>cpu</c> or <c>cuda</c>.</summary>
    public string Device { get; init; } = "auto";

    /// <summary>libtorch compute threads; null = every core.</summary>
    public int? Threads { get; init; }

    /// <summary>The data file or folder and its images (given, or the default <c>images/</c> / <c>images.tar</c> beside it).</summary>
    public string? FingerprintExternalInputs()
    {
        if (Path is null) return null;
        var beside = File.Exists(Path) ? System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(Path))! : Path;
        return ExternalFiles.Fingerprint(Path, ImagesPath ?? System.IO.Path.Combine(beside, "images"), ImagesPath is null ? System.IO.Path.Combine(beside, "images.tar") : null);
    }

    /// <summary>
    /// The data, and its images: <see cref="ImagesPath"/>, or the reader's defaults (<c>images/</c> and <c>images.tar</c>
    /// inside a folder, else beside the file), which a symbolic link could point anywhere.
    /// </summary>
    public IEnumerable<(string Field, string Path)> ExternalPaths()
    {
        if (Path is not { Length: > 0 }) yield break;
        yield return ("path", Path);
        if (ImagesPath is { Length: > 0 })
        {
            yield return ("images_path", ImagesPath);
            yield break;
        }
        if (!System.IO.Path.IsPathRooted(Path)) yield break;
        var root = Directory.Exists(Path) ? Path : System.IO.Path.GetDirectoryName(Path) ?? Path;
        yield return ("images_path", System.IO.Path.Combine(root, "images"));
        yield return ("images_path", System.IO.Path.Combine(root, "images.tar"));
    }

    /// <summary>The regression these params ask for (their fields; the rest at <see cref="RegressionOptions"/>' defaults).</summary>
    public RegressionOptions ToRegression(string device) => new()
    {
        PlsComponents = PlsComponents,
        Splits = Splits,
        TestFraction = TestFraction,
        InnerFolds = InnerFolds,
        Seed = Seed,
        Device = device,
    };

    public IEnumerable<ValidationError> Validate()
    {
        if (Path is { Length: 0 }) yield return new("path", "is empty; give a NetCDF file or plain-format folder, or remove it to use a virtual-monkey dependency.");
        if (Path is null && ImagesPath is not null) yield return new("images_path", "only applies with 'path'; a virtual-monkey dependency brings its own images.");
        foreach (var (region, i) in (Regions ?? []).Select((r, i) => (r, i)))
        {
            if (!NeuralAssembly.KnownRegions.Contains(region))
                yield return new($"regions[{i}]", $"'{region}' is not a region; use one of {string.Join(", ", NeuralAssembly.KnownRegions)}.");
        }
        if (Regions is { Count: 0 }) yield return new("regions", "is empty; list at least one region or remove it to fit every region in the data.");
        if (Layers is { Count: 0 }) yield return new("layers", "is empty; list at least one layer or remove it to fit every layer.");
        if (Layers?.Any(string.IsNullOrWhiteSpace) == true) yield return new("layers", "holds an empty name.");
        if (BinsFromMs < 0) yield return new("bins_from_ms", $"must be 0 or positive; got {BinsFromMs}.");
        if (BinsToMs <= BinsFromMs) yield return new("bins_to_ms", $"must be after bins_from_ms ({BinsFromMs}); got {BinsToMs}.");
        if (Methods.Count == 0 || Methods.Distinct().Count() != Methods.Count) yield return new("methods", "list 'pls' and/or 'ridge', each once.");
        foreach (var e in ToRegression("cpu").Errors()) yield return e;
        if (Halvings is < 1 or > 100) yield return new("halvings", $"must be between 1 and 100; got {Halvings}.");
        if (MinCeiling is not (>= 0 and < 1))
        {
            yield return new("min_ceiling", $"must be in [0, 1) (bins whose noise ceiling is below it are left out of the best-layer choice; default {DefaultMinCeiling}); got {MinCeiling.ToString(System.Globalization.CultureInfo.InvariantCulture)}.");
        }
        foreach (var e in Features.Validate()) yield return e with { Field = "features." + e.Field };
        if (BatchSize is < 1 or > 4096) yield return new("batch_size", $"must be between 1 and 4096; got {BatchSize}.");
        foreach (var e in TorchSettings.Validate(this)) yield return e;
    }
}

/// <summary>How each layer's output is reduced to at most <see cref="MaxDims"/> features.</summary>
public sealed record FeatureParams
{
    public FeatureReductionKind Kind { get; init; } = FeatureReductionKind.Pool;

    /// <summary>D: features per layer at most (Brain-Score reduces layers to 1,000 principal components).</summary>
    public int MaxDims { get; init; } = 1000;

    /// <summary>PCA: synthetic images (rendered from the stage's seed, disjoint from any stimulus set) the components are fitted on.</summary>
    public int PcaImages { get; init; } = 256;

    public IEnumerable<ValidationError> Validate()
    {
        if (MaxDims is < 1 or > 100_000) yield return new("max_dims", $"must be between 1 and 100000; got {MaxDims}.");
        if (PcaImages is < 2 or > 100_000) yield return new("pca_images", $"must be between 2 and 100000; got {PcaImages}.");
    }
}
