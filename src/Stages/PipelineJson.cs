using System.Text.Json;
using System.Text.Json.Serialization;

namespace Pipeline.Stages;

/// <summary>
/// The one JSON convention of the project: snake_case names (as in PyTorch/Brain-Score configs), unknown fields are
/// errors (a typo in a RunSpec must not be silently ignored), enums as strings, indented output, NaN and infinities
/// as the strings "NaN", "Infinity", "-Infinity".
/// </summary>
public static class PipelineJson
{
    public static readonly JsonSerializerOptions Options = Create();

    private static JsonSerializerOptions Create()
    {
        var o = new JsonSerializerOptions
        {
            PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
            DictionaryKeyPolicy = null,
            UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
            RespectNullableAnnotations = true,
            RespectRequiredConstructorParameters = true,
            WriteIndented = true,
            ReadCommentHandling = JsonCommentHandling.Skip,
            AllowTrailingCommas = true,
            // A diverged model's loss is NaN or infinite: written as "NaN"/"Infinity", its metrics and history are kept
            // instead of failing the stage at the last moment.
            NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        };
        o.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower));
        o.MakeReadOnly(populateMissingResolver: true);
        return o;
    }
}
