namespace Pipeline.Stages.Artifacts;

/// <summary>
/// The one artifact layout (DESIGN.md): outputs in <c>runs/{runId}/{stageKind}-{stageKey8}/{file}</c>; resumable state
/// (checkpoints) in <c>state/{stageKind}-{stageKey16}/</c>, shared by every run of the same stage.
/// </summary>
public static class ArtifactPaths
{
    public static string StageFolder(long runId, string stageKind, string contentKey) =>
        $"runs/{runId}/{stageKind}-{contentKey[..8]}/";

    public static string StateFolder(string stageKind, string contentKey) => $"state/{stageKind}-{contentKey[..16]}/";

    /// <summary>
    /// Where a run's stage logs go (<c>runs/{runId}/logs/{stage}.attempt-{n}.log</c>): beside the stage folders, never an
    /// input of a dependent stage and never deleted with a failed attempt's outputs.
    /// </summary>
    public static string LogFolder(long runId) => $"runs/{runId}/logs/";

    public static string LogFile(long runId, string stageName, int attempt) => $"{LogFolder(runId)}{stageName}.attempt-{attempt}.log";

    /// <summary>Validates a store-relative path: no rooting, no '..', no backslashes, no empty segments.</summary>
    public static string Check(string path)
    {
        if (string.IsNullOrWhiteSpace(path) || path.StartsWith('/') || path.Contains('\\') ||
            path.Split('/').Any(s => s is "" or "." or ".."))
        {
            throw new ArgumentException($"'{path}' is not a valid artifact path (relative, '/'-separated, no '..').", nameof(path));
        }
        return path;
    }

    public static string MediaTypeFor(string fileName) => Path.GetExtension(fileName).ToLowerInvariant() switch
    {
        ".json" => "application/json",
        ".tar" => "application/x-tar",
        ".png" => "image/png",
        ".svg" => "image/svg+xml",
        ".csv" => "text/csv",
        ".txt" or ".log" => "text/plain",
        ".safetensors" => "application/octet-stream",
        _ => "application/octet-stream",
    };
}
