using System.Reflection;
using System.Text.Json;
using Pipeline.Stages;
using Pipeline.Stages.Execution;

namespace Pipeline.Jobs.RunSpecs;

/// <summary>
/// One kind of stage: found by its [Stage] attribute, so adding a stage never means editing a switch here. The one
/// exception is <c>search</c>, which the engine itself runs (no request, no job): <see cref="RequestType"/> is null.
/// </summary>
public sealed record StageKind(string Kind, string Queue, int Version, Type? RequestType, Type ParamsType)
{
    /// <summary>Run by the engine (a search adding trial stages), not by a handler on a worker.</summary>
    public bool RunByEngine => RequestType is null;

    public IStageParams DeserializeParams(JsonElement? json) =>
        (IStageParams)(JsonSerializer.Deserialize(json is { ValueKind: not JsonValueKind.Null and not JsonValueKind.Undefined } j ? j.GetRawText() : "{}", ParamsType, PipelineJson.Options)
            ?? throw new JsonException("params must be an object"));

    public IStageRequest CreateRequest(IStageParams parameters, StageContext context) =>
        (IStageRequest)Activator.CreateInstance(RequestType ?? throw new InvalidOperationException($"Stage kind '{Kind}' is run by the engine, not by a handler."), parameters, context)!;

    /// <summary>The parameters with every default filled in, compact: equal parameters give equal text.</summary>
    public string Canonical(IStageParams parameters) =>
        JsonSerializer.Serialize(parameters, ParamsType, CompactOptions);

    private static readonly JsonSerializerOptions CompactOptions = new(PipelineJson.Options) { WriteIndented = false };
}

public static class StageCatalog
{
    private static readonly Lazy<IReadOnlyDictionary<string, StageKind>> Kinds = new(Discover);

    public static IReadOnlyDictionary<string, StageKind> All => Kinds.Value;

    public static StageKind? Find(string kind) => All.GetValueOrDefault(kind);

    public static StageKind Get(string kind) =>
        Find(kind) ?? throw new InvalidOperationException($"Unknown stage kind '{kind}'. Known kinds: {string.Join(", ", All.Keys)}.");

    private static Dictionary<string, StageKind> Discover()
    {
        var kinds = new Dictionary<string, StageKind>(StringComparer.Ordinal)
        {
            [Search.SearchParams.Kind] = new(Search.SearchParams.Kind, StageQueues.Default, 1, null, typeof(Search.SearchParams)),
        };
        foreach (var type in typeof(IStageRequest).Assembly.GetTypes())
        {
            if (type.GetCustomAttribute<StageAttribute>() is not { } attr) continue;
            var ctor = type.GetConstructors().Single(c => c.GetParameters().Length == 2);
            var paramsType = ctor.GetParameters()[0].ParameterType;
            if (!typeof(IStageParams).IsAssignableFrom(paramsType) || ctor.GetParameters()[1].ParameterType != typeof(StageContext))
            {
                throw new InvalidOperationException($"{type.Name} must have a constructor ({paramsType.Name} : IStageParams, StageContext).");
            }
            kinds.Add(attr.Kind, new StageKind(attr.Kind, attr.Queue, attr.Version, type, paramsType));
        }
        return kinds;
    }
}
