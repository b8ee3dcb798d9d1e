using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Pipeline.Web.Access;

/// <summary>
/// Authenticates an <c>Authorization: Bearer &lt;token&gt;</c> header (the API, scripts) against every configured token
/// (<see cref="WebOptions.AllTokens"/>): the principal carries the token's name and role, never the token. Browsers
/// sign in once with a token at /signin and then use the session cookie (<see cref="SessionCookie"/>).
/// </summary>
public sealed class AccessTokenAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> schemeOptions, ILoggerFactory logger, UrlEncoder encoder, IOptions<WebOptions> web)
    : AuthenticationHandler<AuthenticationSchemeOptions>(schemeOptions, logger, encoder)
{
    public const string SchemeName = "AccessToken";

    public static bool HasBearer(HttpRequest request) =>
        request.Headers.Authorization.ToString().StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase);

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        if (!HasBearer(Request)) return Task.FromResult(AuthenticateResult.NoResult());
        var presented = Request.Headers.Authorization.ToString()["Bearer ".Length..].Trim();
        if (Match(web.Value, presented) is not { } token)
        {
            // Never the token itself: where it came from and what it asked for.
            Logger.LogWarning("Rejected a bearer token from {RemoteIp} for {Path}", Context.Connection.RemoteIpAddress, Request.Path.Value);
            return Task.FromResult(AuthenticateResult.Fail("The access token is not valid."));
        }
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(AccessRoles.ForToken(SchemeName, token), SchemeName)));
    }

    /// <summary>A 401 ProblemDetails with a WWW-Authenticate header (RFC 6750) saying whether the token was missing or wrong.</summary>
    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        var failed = (await HandleAuthenticateOnceSafeAsync()).Failure is not null;
        await Unauthorized(Context, failed);
    }

    protected override Task HandleForbiddenAsync(AuthenticationProperties properties) => Forbidden(Context);

    /// <summary>The configured token equal to <paramref name="presented"/>, or null. Every token is compared, so the timing shows neither which nor how many.</summary>
    public static NamedToken? Match(WebOptions web, string presented)
    {
        NamedToken? found = null;
        foreach (var token in web.AllTokens)
        {
            if (FixedTimeEquals(presented, token.Token!) && AccessRoles.Canonical(token.Role) is not null) found ??= token;
        }
        return found;
    }

    public static Task Unauthorized(HttpContext http, bool invalidToken)
    {
        http.Response.Headers.WWWAuthenticate = invalidToken ? "Bearer realm=\"pipeline\", error=\"invalid_token\"" : "Bearer realm=\"pipeline\"";
        return Results.Problem(
            statusCode: StatusCodes.Status401Unauthorized,
            title: invalidToken ? "The access token is not valid." : "An access token is required.",
            detail: "Send 'Authorization: Bearer <token>' with a token configured on this server (Pipeline:Web:AccessToken or Pipeline:Web:Tokens)"
                + $" (in a browser: sign in at {SignInPage.Path}).").ExecuteAsync(http);
    }

    public static Task Forbidden(HttpContext http) =>
        Results.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Your role does not allow that.",
            detail: "Viewers read runs and download artifacts; launching, cancelling, retrying, schedules and /hangfire need the operator role.").ExecuteAsync(http);

    /// <summary>Compares digests, so neither the token's length nor its first differing character shows in the timing.</summary>
    internal static bool FixedTimeEquals(string presented, string expected) =>
        CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(presented)), SHA256.HashData(Encoding.UTF8.GetBytes(expected)));
}
