using System.Text.Json.Nodes;
using Pipeline.Jobs.RunSpecs;
using Pipeline.Jobs.Schedules;
using Pipeline.Web.Access;

namespace Pipeline.Web.Api;

/// <summary>POST /api/schedules (and PUT /api/schedules/{name}, whose name is the route's) body: a cron in a time zone (default UTC), a preset name or an inline RunSpec, optional overrides.</summary>
public sealed record ScheduleRequest(string? Name, string? Cron, string? TimeZone, string? Preset, JsonObject? Spec, string[]? Set, string? Misfire, bool Enabled = true);

public static class SchedulesApi
{
    public static IEndpointRouteBuilder MapSchedulesApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/schedules", async (ScheduleService schedules, CancellationToken ct) => Results.Ok(await schedules.ListAsync(ct)))
            .RequireAuthorization(AccessPolicies.ReadRuns);
        var operate = app.MapGroup("/api/schedules").RequireAuthorization(AccessPolicies.OperateRuns);
        // A schedule's external data only under Pipeline:DataRoots, as for a run posted here.
        operate.MapPost("/", async (ScheduleRequest? body, ScheduleService schedules, DataRoots dataRoots, CancellationToken ct) => await Answer(async () =>
        {
            var b = body ?? new ScheduleRequest(null, null, null, null, null, null, null);
            var added = await schedules.AddAsync(new ScheduleSpec(b.Name, b.Cron, b.TimeZone, b.Preset, b.Spec?.ToJsonString(), b.Set, b.Misfire, b.Enabled), dataRoots, ct);
            return Results.Created($"/api/schedules/{added.Name}", added);
        }));
        operate.MapPut("/{name}", async (string name, ScheduleRequest? body, ScheduleService schedules, DataRoots dataRoots, CancellationToken ct) => await Answer(async () =>
        {
            var b = body ?? new ScheduleRequest(null, null, null, null, null, null, null);
            return Results.Ok(await schedules.UpdateAsync(new ScheduleSpec(name, b.Cron, b.TimeZone, b.Preset, b.Spec?.ToJsonString(), b.Set, b.Misfire, b.Enabled), dataRoots, ct));
        }));
        operate.MapDelete("/{name}", async (string name, ScheduleService schedules, CancellationToken ct) => await Answer(async () =>
        {
            await schedules.RemoveAsync(name, ct);
            return Results.NoContent();
        }));
        operate.MapPost("/{name}/enable", async (string name, ScheduleService schedules, CancellationToken ct) =>
            await Answer(async () => Results.Ok(await schedules.SetEnabledAsync(name, true, ct))));
        operate.MapPost("/{name}/disable", async (string name, ScheduleService schedules, CancellationToken ct) =>
            await Answer(async () => Results.Ok(await schedules.SetEnabledAsync(name, false, ct))));
        operate.MapPost("/{name}/trigger", async (string name, ScheduleService schedules, CancellationToken ct) => await Answer(async () =>
        {
            var id = await schedules.TriggerAsync(name, ct);
            return Results.Created($"/api/runs/{id}", new { id });
        }));
        return app;
    }

    private static async Task<IResult> Answer(Func<Task<IResult>> action)
    {
        try
        {
            return await action();
        }
        catch (ScheduleException e) when (e.Problem == ScheduleProblem.Invalid)
        {
            return Results.ValidationProblem(e.Errors.GroupBy(x => x.Field).ToDictionary(g => g.Key, g => g.Select(x => x.Message).ToArray()));
        }
        catch (ScheduleException e)
        {
            return Results.Problem(e.Message, statusCode: e.Problem == ScheduleProblem.NotFound ? 404 : 409);
        }
        catch (RunSpecException e)
        {
            // A trigger whose preset no longer loads (edited since the schedule was added).
            return Results.ValidationProblem(e.Errors.GroupBy(x => x.Field).ToDictionary(g => g.Key, g => g.Select(x => x.Message).ToArray()));
        }
    }
}
