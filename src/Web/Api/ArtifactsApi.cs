using Pipeline.Jobs.Runs;
using Pipeline.Stages.Artifacts;
using Pipeline.Web.Access;

namespace Pipeline.Web.Api;

public static class ArtifactsApi
{
    /// <summary>
    /// GET /api/artifacts/{id}/download: a redirect to a short-lived SAS URL on Azure; on the filesystem store the
    /// bytes themselves, streamed through sha256 verification (a corrupt file ends the response with an error).
    /// Allowed to whoever may read the artifact's run (<see cref="AccessPolicies.ReadRuns"/>).
    /// </summary>
    public static IEndpointRouteBuilder MapArtifactsApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/artifacts/{id:long}/download", async (long id, RunQueries runs, IArtifactStore store, CancellationToken ct) =>
        {
            var a = await runs.GetArtifactAsync(id, ct);
            if (a is null) return Results.Problem($"Artifact {id} does not exist.", statusCode: 404);
            if (store.GetDownloadUri(a.Path, TimeSpan.FromMinutes(15)) is { } uri) return Results.Redirect(uri.ToString());
            var stream = await store.OpenReadAsync(a.Path, a.Sha256, ct);
            return Results.Stream(stream, a.MediaType, Path.GetFileName(a.Path));
        }).RequireAuthorization(AccessPolicies.ReadRuns);
        return app;
    }
}
