using System.Text.Json;
using Pipeline.Stages.Execution;

namespace Pipeline.Stages.Models;

/// <summary>The paper's models and controls as JSON presets embedded in this assembly (Models/Presets/*.json).</summary>
public static class ModelPresets
{
    private const string Prefix = "Pipeline.Stages.Models.Presets.";

    public static IReadOnlyList<string> Names { get; } =
        [.. typeof(ModelPresets).Assembly.GetManifestResourceNames()
            .Where(n => n.StartsWith(Prefix, StringComparison.Ordinal) && n.EndsWith(".json", StringComparison.Ordinal))
            .Select(n => n[Prefix.Length..^".json".Length]).Order(StringComparer.Ordinal)];

    /// <summary>A preset at a given input size, class count and width multiplier.</summary>
    public static ModelSpec Load(string name, int? inputSize = null, int? classes = null, double? width = null)
    {
        using var stream = typeof(ModelPresets).Assembly.GetManifestResourceStream(Prefix + name + ".json")
            ?? throw new ModelSpecException([new ValidationError("preset", $"no model preset '{name}'; presets: {string.Join(", ", Names)}")]);
        var spec = Parse(stream, $"preset {name}");
        return spec with { InputSize = inputSize ?? spec.InputSize, Classes = classes ?? spec.Classes, Width = width ?? spec.Width };
    }

    public static ModelSpec Parse(Stream json, string source)
    {
        try
        {
            return JsonSerializer.Deserialize<ModelSpec>(json, PipelineJson.Options) ?? throw new JsonException("empty");
        }
        catch (JsonException e)
        {
            throw new ModelSpecException([new ValidationError(e.Path?.TrimStart('$', '.') is { Length: > 0 } p ? p : source, e.Message.Split(" Path:")[0])]);
        }
    }
}

/// <summary>A model spec that cannot be built; each error names its field and the fix.</summary>
public sealed class ModelSpecException(IReadOnlyList<ValidationError> errors)
    : Exception("Invalid model spec:\n" + string.Join("\n", errors.Select(e => "  " + e)))
{
    public IReadOnlyList<ValidationError> Errors { get; } = errors;
}
