using System.Text.Json;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using Pipeline.Jobs.Runs;
using Pipeline.Stages.Artifacts;
using Pipeline.Web.Access;

namespace Pipeline.Web.Health;

/// <summary>The run store answers a query.</summary>
public sealed class RunStoreHealthCheck(RunQueries runs) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            return HealthCheckResult.Healthy(await runs.DescribeStoreAsync(cancellationToken));
        }
        catch (Exception e)
        {
            return HealthCheckResult.Unhealthy($"run store unreachable: {e.Message}");
        }
    }
}

/// <summary>The artifact store answers a metadata request.</summary>
public sealed class ArtifactStoreHealthCheck(IArtifactStore store) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        // A bounded wait: the storage SDK's own retries take ~20 s against an unreachable endpoint.
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(5));
        try
        {
            await store.GetInfoAsync("healthz/probe", timeout.Token);
            return HealthCheckResult.Healthy(store.Kind);
        }
        catch (Exception e)
        {
            return HealthCheckResult.Unhealthy($"{store.Kind} artifact store unreachable: {e.Message}");
        }
    }
}

/// <summary>
/// /healthz answers JSON: the overall status (503 when unhealthy) and, unless a token is configured and the caller did
/// not send it, each check's status and description (which name the database provider, run counts and connection
/// errors). Anonymous callers are let in so that liveness and readiness probes need no secret.
/// </summary>
public static class HealthResponse
{
    public static readonly HealthCheckOptions Options = new()
    {
        ResponseWriter = (http, report) =>
        {
            http.Response.ContentType = "application/json";
            var details = http.User.Identity?.IsAuthenticated == true
                || !http.RequestServices.GetRequiredService<IOptions<WebOptions>>().Value.AuthenticationConfigured;
            return http.Response.WriteAsync(details
                ? JsonSerializer.Serialize(new
                {
                    status = report.Status.ToString(),
                    checks = report.Entries.ToDictionary(e => e.Key, e => new { status = e.Value.Status.ToString(), description = e.Value.Description }),
                })
                : JsonSerializer.Serialize(new { status = report.Status.ToString() }));
        },
    };
}
