using Hangfire.Dashboard;
using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Options;

namespace Pipeline.Web.Access;

/// <summary>
/// Who may do what. With an access token, the fallback policy requires an authenticated caller on every endpoint that
/// names no policy (and on unknown paths), and the named policies require the same; the dashboard issue will give them
/// roles. Without a token (loopback only) every policy admits everyone, as before authentication existed.
/// </summary>
public static class AccessPolicies
{
    /// <summary>Reading runs, their stages and metrics, and downloading their artifacts: one policy for both.</summary>
    public const string ReadRuns = "read-runs";

    /// <summary>Launching, cancelling and retrying runs and stages; the Hangfire dashboard (it deletes and requeues jobs).</summary>
    public const string OperateRuns = "operate-runs";

    public static void Configure(AuthorizationOptions options, WebOptions web)
    {
        var policy = web.AuthenticationConfigured
            ? new AuthorizationPolicyBuilder(AccessTokenAuthenticationHandler.SchemeName).RequireAuthenticatedUser().Build()
            : new AuthorizationPolicyBuilder().RequireAssertion(_ => true).Build();
        options.AddPolicy(ReadRuns, policy);
        options.AddPolicy(OperateRuns, policy);
        if (web.AuthenticationConfigured) options.FallbackPolicy = policy;
    }
}

/// <summary>
/// Hangfire's own gate on /hangfire, behind the endpoint's <see cref="AccessPolicies.OperateRuns"/>: the same policy
/// when a token is configured; otherwise Hangfire's default, local requests only (a second lock besides the start-up
/// refusal to listen off loopback without a token).
/// </summary>
public sealed class HangfireDashboardAccess : IDashboardAsyncAuthorizationFilter
{
    private static readonly LocalRequestsOnlyAuthorizationFilter LocalOnly = new();

    public async Task<bool> AuthorizeAsync(DashboardContext context)
    {
        var http = context.GetHttpContext();
        if (!http.RequestServices.GetRequiredService<IOptions<WebOptions>>().Value.AuthenticationConfigured) return LocalOnly.Authorize(context);
        var authorization = http.RequestServices.GetRequiredService<IAuthorizationService>();
        return (await authorization.AuthorizeAsync(http.User, AccessPolicies.OperateRuns)).Succeeded;
    }
}
