using Hangfire.Dashboard;
using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Options;

namespace Pipeline.Web.Access;

/// <summary>
/// Who may do what. With authentication configured (tokens or Entra ID): <see cref="ReadRuns"/> needs the viewer or the
/// operator role, <see cref="OperateRuns"/> the operator role, and the fallback policy (every endpoint that names no
/// policy, unknown paths) is <see cref="ReadRuns"/>. Signed in without the role: 403; not signed in: 401, or for a
/// browser page the sign-in form. Without authentication (loopback only) every policy admits everyone.
/// </summary>
public static class AccessPolicies
{
    /// <summary>Reading runs, their stages and metrics, and downloading their artifacts: one policy for both.</summary>
    public const string ReadRuns = "read-runs";

    /// <summary>Launching, cancelling and retrying runs and stages; editing schedules; the Hangfire dashboard (it deletes and requeues jobs).</summary>
    public const string OperateRuns = "operate-runs";

    public static void Configure(AuthorizationOptions options, WebOptions web)
    {
        if (!web.AuthenticationConfigured)
        {
            var open = new AuthorizationPolicyBuilder().RequireAssertion(_ => true).Build();
            options.AddPolicy(ReadRuns, open);
            options.AddPolicy(OperateRuns, open);
            return;
        }
        var read = new AuthorizationPolicyBuilder(AccessExtensions.Scheme).RequireAuthenticatedUser()
            .RequireRole(AccessRoles.Viewer, AccessRoles.Operator).Build();
        options.AddPolicy(ReadRuns, read);
        options.AddPolicy(OperateRuns, new AuthorizationPolicyBuilder(AccessExtensions.Scheme).RequireAuthenticatedUser().RequireRole(AccessRoles.Operator).Build());
        options.FallbackPolicy = read;
    }
}

/// <summary>
/// Hangfire's own gate on /hangfire, behind the endpoint's <see cref="AccessPolicies.OperateRuns"/>: the same policy
/// when authentication is configured; otherwise Hangfire's default, local requests only (a second lock besides the
/// start-up refusal to listen off loopback without authentication).
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
