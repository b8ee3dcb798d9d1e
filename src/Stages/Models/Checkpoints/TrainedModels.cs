using System.Text.Json;
using Pipeline.Stages.Artifacts;
using Pipeline.Stages.Execution;

namespace Pipeline.Stages.Models.Checkpoints;

/// <summary>
/// A trained model as a train stage leaves it (<c>model.safetensors</c> + its spec sidecar), for every stage that reads
/// one (virtual monkey, neural fit, time-step sweep): found among the inputs, downloaded, loaded.
/// </summary>
public static class TrainedModels
{
    public const string ModelFile = "model.safetensors";

    /// <summary>Whether a dependency of the stage provides a trained model.</summary>
    public static bool IsProvided(StageContext context) => context.FindInput(ModelFile) is not null;

    /// <summary>Downloads the trained model and its sidecar into the scratch folder; returns the model's local path.</summary>
    public static async Task<string> DownloadAsync(StageContext context, CancellationToken ct)
    {
        var path = await context.DownloadInputAsync(context.RequireInput(ModelFile), "model", ct);
        await context.DownloadInputAsync(context.RequireInput(ModelCheckpoint.SidecarPath(ModelFile)), "model", ct);
        return path;
    }

    /// <summary>
    /// Downloads the trained model of the dependency <paramref name="dependency"/> (a train stage) and its sidecar into
    /// <c>model/{dependency}/</c> under the scratch folder; <paramref name="field"/> names the param that chose it.
    /// </summary>
    public static async Task<string> DownloadAsync(StageContext context, string dependency, string field, CancellationToken ct)
    {
        if (!context.Inputs.TryGetValue(dependency, out var artifacts))
            throw new StageInputException($"params.{field}: '{dependency}' is not a dependency of stage '{context.StageName}'; add it to depends_on (dependencies: {string.Join(", ", context.Inputs.Keys)}).");
        ArtifactInfo Named(string file) => artifacts.FirstOrDefault(a => a.Path.EndsWith("/" + file, StringComparison.Ordinal))
            ?? throw new StageInputException($"params.{field}: the dependency '{dependency}' wrote no {file}; name a train stage.");
        var folder = $"model/{dependency}";
        var path = await context.DownloadInputAsync(Named(ModelFile), folder, ct);
        await context.DownloadInputAsync(Named(ModelCheckpoint.SidecarPath(ModelFile)), folder, ct);
        return path;
    }

    /// <summary>The dependencies of the stage that provide a trained model, in dependency order.</summary>
    public static IReadOnlyList<string> ProvidersOf(StageContext context) =>
        [.. context.Inputs.Where(kv => kv.Value.Any(a => a.Path.EndsWith("/" + ModelFile, StringComparison.Ordinal))).Select(kv => kv.Key)];

    /// <summary>
    /// The model at <paramref name="path"/> with the spec its sidecar records, presented with <paramref name="time"/>
    /// (null: the time it was trained with; the time spec only changes the presentation, not the weights). Strict load: every key, shape and dtype must
    /// match; a file that does not is a stage error that says to re-run the train stage.
    /// </summary>
    public static IVisionModel Load(string path, TimeSpec? time = null)
    {
        IVisionModel? model = null;
        try
        {
            var spec = ModelCheckpoint.ReadSpec(path).Deserialize<ModelSpec>(PipelineJson.Options)
                ?? throw new InvalidDataException($"The sidecar of '{path}' holds no model spec.");
            model = ModelFactory.Create(time is null ? spec : spec with { Time = time });
            ModelCheckpoint.Load(model.Module, path);
            return model;
        }
        catch (Exception e) when (e is CheckpointMismatchException or CheckpointFormatException or ModelSpecException or JsonException or InvalidDataException)
        {
            model?.Dispose();
            throw new StageInputException($"The trained model could not be loaded: {e.Message} Re-run the train stage.", e);
        }
        catch
        {
            model?.Dispose();
            throw;
        }
    }
}
