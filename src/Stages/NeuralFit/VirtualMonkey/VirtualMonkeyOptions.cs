using Pipeline.Stages.Execution;
using Pipeline.Stages.Models;

namespace Pipeline.Stages.NeuralFit;

/// <summary>One simulated area: its sites read the features of <see cref="Layer"/>, <see cref="LatencySteps"/> steps late.</summary>
public sealed record AreaSpec(string Region, string Layer, int LatencySteps = AreaSpec.DefaultLatency, int Sites = AreaSpec.DefaultSites)
{
    /// <summary>With the shallow models (conv3 reached at step 2, conv5 at step 4) this puts onsets near 70–90 ms.</summary>
    public const int DefaultLatency = 5;

    public const int DefaultSites = 32;

    /// <summary>The <see cref="ParseList"/> form of these areas (sites are given separately).</summary>
    public static string FormatList(IEnumerable<AreaSpec> areas) =>
        string.Join(",", areas.Select(a => $"{a.Region}={a.Layer}{(a.LatencySteps == DefaultLatency ? "" : $"@{a.LatencySteps}")}"));

    /// <summary>Parses <c>V4=conv3,IT=conv5@4</c> (latency after @, default <see cref="DefaultLatency"/>).</summary>
    public static IReadOnlyList<AreaSpec> ParseList(string text, int sites)
    {
        var areas = new List<AreaSpec>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = part.Split('=', 2, StringSplitOptions.TrimEntries);
            if (eq.Length != 2 || eq[0].Length == 0 || eq[1].Length == 0) throw new FormatException($"'{part}' is not REGION=LAYER[@LATENCY] (e.g. V4=conv3@5)");
            var at = eq[1].Split('@', 2, StringSplitOptions.TrimEntries);
            var latency = DefaultLatency;
            if (at.Length == 2 && !int.TryParse(at[1], System.Globalization.CultureInfo.InvariantCulture, out latency))
                throw new FormatException($"'{part}': latency '{at[1]}' is not a whole number of steps");
            areas.Add(new AreaSpec(eq[0], at[0], latency, sites));
        }
        return areas;
    }
}

/// <summary>
/// A virtual monkey: a seeded reference model shown stimuli with the neural schedule (<see cref="TimeSpec.Neural"/>:
/// 26 steps of 10 ms, image off at step 10) whose "sites" are sparse linear read-outs of one layer each, plus trial noise.
/// Known ground truth (generating layer, latency, noise, ceiling) lets the neural-fit stage be tested end to end.
/// </summary>
public sealed record VirtualMonkeyOptions
{
    public string Preset { get; init; } = "rgc-shallow";
    public double Width { get; init; } = 0.25;
    public int ImageSize { get; init; } = 32;
    public int Stimuli { get; init; } = 320;
    public int Repetitions { get; init; } = 4;

    /// <summary>Standard deviation of the Gaussian trial noise, in units of a site's (z-scored) signal.</summary>
    public double Noise { get; init; } = 0.5;

    public long Seed { get; init; }
    public IReadOnlyList<AreaSpec> Areas { get; init; } = [new("V4", "conv3"), new("IT", "conv5")];

    /// <summary>k: each site is a weighted sum of this many randomly chosen features of its layer.</summary>
    public int FeaturesPerSite { get; init; } = 8;

    /// <summary>Null: a layer's features are its channels averaged over space. A number D: a fixed seeded Gaussian
    /// random projection of the whole (flattened) map to D dims — keeps spatial information.</summary>
    public int? ProjectionDims { get; init; }

    /// <summary>Object categories of the synthetic renderer (shapes, at most 12 so names stay plain shape names).</summary>
    public int Classes { get; init; } = 8;

    /// <summary>Use these images (<c>{stimulus_id}.png|jpg</c>; optional <c>objects.csv</c> with stimulus_id,object_name)
    /// instead of rendering synthetic ones.</summary>
    public string? ImagesFolder { get; init; }

    public int BatchSize { get; init; } = 32;

    /// <summary>A trained <c>model.safetensors</c> (with its <c>.json</c> spec sidecar, as the train stage writes them) to
    /// read the sites from, instead of <see cref="Preset"/> initialised from <see cref="Seed"/>; its spec fixes the
    /// width and the image size (<see cref="Preset"/>, <see cref="Width"/> and <see cref="ImageSize"/> are then unused).</summary>
    public string? ModelPath { get; init; }

    public IEnumerable<ValidationError> Validate()
    {
        if (ModelPath is { } path && !File.Exists(path)) yield return new("model_path", $"{path} does not exist");
        if (ModelPath is null && !ModelPresets.Names.Contains(Preset)) yield return new("preset", $"no model preset '{Preset}'; presets: {string.Join(", ", ModelPresets.Names)}");
        if (!(Width is > 0 and <= 16)) yield return new("width", $"must be in (0, 16], got {Width}");
        if (ImageSize is < 16 or > 512) yield return new("image_size", $"must be between 16 and 512 pixels, got {ImageSize}");
        if (ImagesFolder is null && Stimuli is < 4 or > 100_000) yield return new("stimuli", $"must be between 4 and 100000, got {Stimuli}");
        if (Repetitions is < 2 or > 1000) yield return new("repetitions", $"must be between 2 and 1000 (the ceiling needs two), got {Repetitions}");
        if (!(Noise is >= 0 and <= 100)) yield return new("noise", $"must be in [0, 100], got {Noise}");
        if (FeaturesPerSite < 1) yield return new("features_per_site", $"must be at least 1, got {FeaturesPerSite}");
        if (ProjectionDims is < 1 or > 4096) yield return new("projection_dims", $"must be between 1 and 4096, got {ProjectionDims}");
        if (Classes is < 2 or > 12) yield return new("classes", $"must be between 2 and 12, got {Classes}");
        if (BatchSize < 1) yield return new("batch_size", $"must be at least 1, got {BatchSize}");
        if (Areas.Count == 0) yield return new("areas", "give at least one area, e.g. V4=conv3");
        for (var i = 0; i < Areas.Count; i++)
        {
            var a = Areas[i];
            if (!NeuralAssembly.KnownRegions.Contains(a.Region)) yield return new($"areas[{i}].region", $"'{a.Region}' is not one of {string.Join(", ", NeuralAssembly.KnownRegions)}");
            if (a.LatencySteps is < 0 or >= 26) yield return new($"areas[{i}].latency_steps", $"must be between 0 and 25 steps, got {a.LatencySteps}");
            if (a.Sites is < 1 or > 10_000) yield return new($"areas[{i}].sites", $"must be between 1 and 10000, got {a.Sites}");
        }
        foreach (var dup in Areas.GroupBy(a => a.Region).Where(g => g.Count() > 1)) yield return new("areas", $"region '{dup.Key}' is given twice");
    }
}
