using System.Text.Json;
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
    /// The model at <paramref name="path"/> with the spec its sidecar records, presented with <paramref name="time"/>
    /// (the time spec only changes the presentation, not the weights). Strict load: every key, shape and dtype must
    /// match; a file that does not is a stage error that says to re-run the train stage.
    /// </summary>
    public static IVisionModel Load(string path, TimeSpec time)
    {
        IVisionModel? model = null;
        try
        {
            var spec = ModelCheckpoint.ReadSpec(path).Deserialize<ModelSpec>(PipelineJson.Options)
                ?? throw new InvalidDataException($"The sidecar of '{path}' holds no model spec.");
            model = ModelFactory.Create(spec with { Time = time });
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
