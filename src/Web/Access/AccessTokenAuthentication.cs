using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Pipeline.Web.Access;

/// <summary>
/// Authenticates the caller by Pipeline:Web:AccessToken: an <c>Authorization: Bearer &lt;token&gt;</c> header (the
/// API, scripts, the CLI of later issues) or the sign-in cookie (a browser on /hangfire, see <see cref="SignInPage"/>).
/// Without a configured token it never authenticates anyone, and the policies (<see cref="AccessPolicies"/>) let
/// everyone in: the host only starts like that on loopback.
/// </summary>
public sealed class AccessTokenAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> schemeOptions, ILoggerFactory logger, UrlEncoder encoder, IOptions<WebOptions> web)
    : AuthenticationHandler<AuthenticationSchemeOptions>(schemeOptions, logger, encoder)
{
    public const string SchemeName = "AccessToken";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        if (web.Value.Token is not { } token) return Task.FromResult(AuthenticateResult.NoResult());
        string? presented = null;
        var fromCookie = false;
        var header = Request.Headers.Authorization.ToString();
        if (header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)) presented = header["Bearer ".Length..].Trim();
        else if (Request.Cookies[AccessCookie.Name] is { } cookie)
        {
            presented = cookie;
            fromCookie = true;
        }
        if (presented is null) return Task.FromResult(AuthenticateResult.NoResult());
        if (!FixedTimeEquals(presented, fromCookie ? AccessCookie.Value(token) : token))
        {
            Logger.LogWarning("Rejected an access token ({Source}) from {RemoteIp} for {Path}", fromCookie ? "cookie" : "bearer",
                Context.Connection.RemoteIpAddress, Request.Path.Value);
            return Task.FromResult(AuthenticateResult.Fail("The access token is not valid."));
        }
        var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, "access-token")], SchemeName);
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName)));
    }

    /// <summary>
    /// A browser asking for a /hangfire page goes to the sign-in form; everything else gets a 401 ProblemDetails with
    /// a WWW-Authenticate header (RFC 6750) saying whether the token was missing or wrong.
    /// </summary>
    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        if (web.Value.AuthenticationConfigured && SignInPage.WantsSignIn(Request))
        {
            Response.Redirect(SignInPage.PathFor(Request));
            return;
        }
        var failed = (await HandleAuthenticateOnceSafeAsync()).Failure is not null;
        Response.Headers.WWWAuthenticate = failed ? "Bearer realm=\"pipeline\", error=\"invalid_token\"" : "Bearer realm=\"pipeline\"";
        await Results.Problem(
            statusCode: StatusCodes.Status401Unauthorized,
            title: failed ? "The access token is not valid." : "An access token is required.",
            detail: "Send 'Authorization: Bearer <token>' with the token set in Pipeline:Web:AccessToken on this server"
                + $" (in a browser: sign in at {SignInPage.Path}).").ExecuteAsync(Context);
    }

    protected override Task HandleForbiddenAsync(AuthenticationProperties properties) =>
        Results.Problem(statusCode: StatusCodes.Status403Forbidden, title: "This access token does not allow that.").ExecuteAsync(Context);

    /// <summary>Compares digests, so neither the token's length nor its first differing character shows in the timing.</summary>
    internal static bool FixedTimeEquals(string presented, string expected) =>
        CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(presented)), SHA256.HashData(Encoding.UTF8.GetBytes(expected)));
}

/// <summary>
/// The browser's credential for /hangfire, set by the sign-in form. Why a form and a cookie rather than
/// <c>?access_token=</c>: a token in a URL ends up in browser history, proxy logs and Referer headers; a form POST keeps
/// it in the body. Why the cookie holds a digest of the token rather than a cookie-authentication ticket: no key ring
/// to store and share between dashboard hosts, and changing the token signs every browser out at once. The digest
/// (not the token) keeps the secret that scripts use out of the browser's cookie store. HttpOnly keeps it from scripts;
/// SameSite=Strict keeps other sites from riding on it (the dashboard's buttons delete and requeue jobs).
/// </summary>
public static class AccessCookie
{
    public const string Name = "pipeline_access";

    public static readonly TimeSpan Lifetime = TimeSpan.FromHours(12);

    public static string Value(string token) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes("pipeline-web-cookie\n" + token)));

    public static CookieOptions Options(HttpRequest request) => new()
    {
        HttpOnly = true,
        Secure = request.IsHttps,
        SameSite = SameSiteMode.Strict,
        Path = "/",
        MaxAge = Lifetime,
        IsEssential = true,
    };
}
