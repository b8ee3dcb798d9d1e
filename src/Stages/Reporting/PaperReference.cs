using System.Text.Json;

namespace Pipeline.Stages.Reporting;

/// <summary>
/// The paper's and the released models' numbers (<c>paper-reference.json</c>, embedded), each with its source: what the
/// dashboard's Compare page and the report set our results beside. One file, so that both always show the same.
/// </summary>
public sealed record PaperReference
{
    public required string Description { get; init; }
    public required IReadOnlyList<ReferenceModel> Models { get; init; }
    public required ReleasedTop1 ReleasedTop1 { get; init; }
    public required NeuralMapping NeuralMapping { get; init; }
    public required NeuralCeilings Ceilings { get; init; }

    private static readonly Lazy<PaperReference> Loaded = new(() =>
    {
        using var stream = typeof(PaperReference).Assembly.GetManifestResourceStream("Pipeline.Stages.Reporting.paper-reference.json")
            ?? throw new InvalidOperationException("paper-reference.json is not embedded in Pipeline.Stages");
        return JsonSerializer.Deserialize<PaperReference>(stream, PipelineJson.Options) ?? throw new JsonException("paper-reference.json is empty");
    });

    public static PaperReference Load() => Loaded.Value;
}

/// <summary>A published model: its parameter count (a range when the sources differ) and ImageNet top-1 as a fraction.</summary>
public sealed record ReferenceModel
{
    public required string Name { get; init; }

    /// <summary><c>feedforward</c> or <c>convrnn</c>.</summary>
    public required string Kind { get; init; }
    public required long Parameters { get; init; }
    public long? ParametersHigh { get; init; }
    public required double Top1 { get; init; }
    public required string Source { get; init; }
}

/// <summary>ImageNet top-1 of the released shallow and intermediate ConvRNNs, by cell type (our cell type names).</summary>
public sealed record ReleasedTop1
{
    public required string Source { get; init; }
    public required IReadOnlyDictionary<string, double> Shallow { get; init; }
    public required IReadOnlyDictionary<string, double> Intermediate { get; init; }
}

/// <summary>Which layers each area is best fit by, per model family: the claim the neural fits are checked against.</summary>
public sealed record NeuralMapping
{
    public required string Source { get; init; }
    public required IReadOnlyDictionary<string, IReadOnlyList<string>> Median { get; init; }
    public required IReadOnlyDictionary<string, IReadOnlyList<string>> Intermediate { get; init; }
    public required IReadOnlyDictionary<string, IReadOnlyList<string>> Shallow { get; init; }

    /// <summary>
    /// The layers the paper maps <paramref name="area"/> onto for the family <paramref name="model"/> belongs to (by its
    /// name: <c>median</c>, <c>intermediate</c> or <c>shallow</c>); HvM's whole <c>IT</c> takes pIT's and cIT/aIT's
    /// layers. Null for another model or area: there is no claim to set beside it.
    /// </summary>
    public IReadOnlyList<string>? LayersFor(string? model, string area)
    {
        var family = model switch
        {
            null => null,
            _ when model.Contains("median", StringComparison.OrdinalIgnoreCase) => Median,
            _ when model.Contains("intermediate", StringComparison.OrdinalIgnoreCase) => Intermediate,
            _ when model.Contains("shallow", StringComparison.OrdinalIgnoreCase) => Shallow,
            _ => null,
        };
        if (family is null) return null;
        if (family.TryGetValue(area, out var layers)) return layers;
        return area == "IT" ? [.. family.Where(a => a.Key.EndsWith("IT", StringComparison.Ordinal)).SelectMany(a => a.Value)] : null;
    }
}

/// <summary>Brain-Score's noise ceilings of HvM's areas.</summary>
public sealed record NeuralCeilings
{
    public required string Source { get; init; }

    [System.Text.Json.Serialization.JsonPropertyName("V4")]
    public required double V4 { get; init; }

    [System.Text.Json.Serialization.JsonPropertyName("IT")]
    public required double It { get; init; }
}
