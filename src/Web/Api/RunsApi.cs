using System.Text.Json.Nodes;
using Pipeline.Jobs.Engine;
using Pipeline.Jobs.RunSpecs;
using Pipeline.Web.Access;
using Pipeline.Jobs.Runs;

namespace Pipeline.Web.Api;

/// <summary>POST /api/runs body: a preset name or an inline RunSpec, optional key=value overrides.</summary>
public sealed record LaunchRequest(string? Preset, JsonObject? Spec, string[]? Set, bool NoCache = false);

public static class RunsApi
{
    public static IEndpointRouteBuilder MapRunsApi(this IEndpointRouteBuilder app)
    {
        var runs = app.MapGroup("/api/runs");
        runs.MapGet("/", async (RunQueries q, int? limit, CancellationToken ct) => Results.Ok(await q.ListAsync(Math.Clamp(limit ?? 50, 1, 500), ct)))
            .RequireAuthorization(AccessPolicies.ReadRuns);
        runs.MapGet("/{id:long}", async (long id, RunQueries q, CancellationToken ct) =>
            await q.GetAsync(id, ct) is { } run ? Results.Ok(run) : Results.Problem($"Run {id} does not exist.", statusCode: 404))
            .RequireAuthorization(AccessPolicies.ReadRuns);
        var operate = app.MapGroup("/api").RequireAuthorization(AccessPolicies.OperateRuns);
        // External data (a shard folder, neural data) only under Pipeline:DataRoots, also after `set` overrides.
        operate.MapPost("/runs", async (LaunchRequest? body, RunLauncher launcher, DataRoots dataRoots, CancellationToken ct) =>
        {
            if (body is null || (body.Preset is null) == (body.Spec is null))
            {
                return Results.ValidationProblem(new Dictionary<string, string[]> { ["preset"] = ["give either 'preset' (a preset name) or 'spec' (an inline RunSpec), not both"] });
            }
            try
            {
                var (id, stages) = body.Preset is not null
                    ? await launcher.LaunchPresetAsync(body.Preset, body.Set, body.NoCache, allowPaths: false, dataRoots: dataRoots, ct: ct)
                    : await launcher.LaunchSpecAsync(body.Spec!.ToJsonString(), null, body.Set, body.NoCache, dataRoots: dataRoots, ct: ct);
                return Results.Created($"/api/runs/{id}", new { id, stages });
            }
            catch (RunSpecException e)
            {
                return Results.ValidationProblem(e.Errors.GroupBy(x => x.Field).ToDictionary(g => g.Key, g => g.Select(x => x.Message).ToArray()));
            }
        });
        operate.MapPost("/runs/{id:long}/cancel", async (long id, StageEngine engine, CancellationToken ct) => await Control(() => engine.CancelRunAsync(id, ct)));
        operate.MapPost("/runs/{id:long}/retry", async (long id, StageEngine engine, CancellationToken ct) => await Control(() => engine.RetryRunAsync(id, ct)));
        operate.MapPost("/stages/{id:long}/cancel", async (long id, StageEngine engine, CancellationToken ct) => await Control(() => engine.CancelAsync(id, ct: ct)));
        operate.MapPost("/stages/{id:long}/retry", async (long id, StageEngine engine, CancellationToken ct) => await Control(() => engine.RetryAsync(id, ct)));
        operate.MapPost("/stages/{id:long}/rerun", async (long id, StageEngine engine, CancellationToken ct) => await Control(() => engine.RerunAsync(id, ct)));
        return app;
    }

    private static async Task<IResult> Control(Func<Task> action)
    {
        try
        {
            await action();
            return Results.Accepted();
        }
        catch (EngineException e)
        {
            return Results.Problem(e.Message, statusCode: e.IsNotFound ? 404 : 409);
        }
    }
}
