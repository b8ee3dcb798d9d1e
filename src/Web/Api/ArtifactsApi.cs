using Pipeline.Jobs.Runs;
using Pipeline.Stages.Artifacts;
using Pipeline.Web.Access;

namespace Pipeline.Web.Api;

public static class ArtifactsApi
{
    /// <summary>
    /// GET /api/artifacts/{id}/download and GET /api/runs/{runId}/artifacts/{*path}: a redirect to a short-lived SAS URL
    /// on Azure; on the filesystem store the bytes themselves, streamed through sha256 verification (a corrupt file ends
    /// the response with an error). Allowed to whoever may read the artifact's run (<see cref="AccessPolicies.ReadRuns"/>).
    /// </summary>
    public static IEndpointRouteBuilder MapArtifactsApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/artifacts/{id:long}/download", async (long id, RunQueries runs, IArtifactStore store, CancellationToken ct) =>
        {
            var a = await runs.GetArtifactAsync(id, ct);
            if (a is null) return Results.Problem($"Artifact {id} does not exist.", statusCode: 404);
            return await Download(a, store, ct);
        }).RequireAuthorization(AccessPolicies.ReadRuns);

        // By path, for the pages' links (runs/{runId}/{stage}-{key8}/{file} as "{stage}-{key8}/{file}", or the whole
        // recorded path). The path only selects one of the run's recorded artifacts, compared as a string: nothing the
        // caller sends becomes a file name, so '..', encoded separators and absolute paths cannot leave the run (they
        // are refused with 400 before the lookup), and another run's artifact is not found here (404).
        app.MapGet("/api/runs/{runId:long}/artifacts/{*path}", async (long runId, string? path, RunQueries runs, IArtifactStore store, CancellationToken ct) =>
        {
            if (RunRelative(path) is not { } relative)
            {
                return Results.Problem("An artifact path is relative to its run's folder, '/'-separated, without '.', '..', '\\' or empty segments.", statusCode: 400);
            }
            var run = await runs.GetAsync(runId, ct);
            if (run is null) return Results.Problem($"Run {runId} does not exist.", statusCode: 404);
            var artifact = run.Stages.SelectMany(s => s.Artifacts).FirstOrDefault(a => a.Path == $"runs/{runId}/{relative}" || a.Path == relative);
            return artifact is null
                ? Results.Problem($"Run {runId} has no artifact '{relative}'.", statusCode: 404)
                : await Download(artifact, store, ct);
        }).RequireAuthorization(AccessPolicies.ReadRuns);
        return app;
    }

    /// <summary>The path fully percent-decoded (an encoded '%2e%2e%2f' is a '../'), or null when it is not a valid relative artifact path.</summary>
    internal static string? RunRelative(string? path)
    {
        if (string.IsNullOrEmpty(path)) return null;
        var decoded = path;
        for (var i = 0; i < 4; i++)
        {
            var next = Uri.UnescapeDataString(decoded);
            if (next == decoded) break;
            decoded = next;
        }
        if (decoded.Contains('%') || decoded.Any(char.IsControl) || decoded.Contains(':')) return null;
        try
        {
            return ArtifactPaths.Check(decoded);
        }
        catch (ArgumentException)
        {
            return null;
        }
    }

    private static async Task<IResult> Download(ArtifactView a, IArtifactStore store, CancellationToken ct)
    {
        if (store.GetDownloadUri(a.Path, TimeSpan.FromMinutes(15)) is { } uri) return Results.Redirect(uri.ToString());
        var stream = await store.OpenReadAsync(a.Path, a.Sha256, ct);
        return Results.Stream(stream, a.MediaType, Path.GetFileName(a.Path));
    }
}
