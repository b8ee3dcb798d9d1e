using System.Net;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.OpenIdConnect;
using Microsoft.Extensions.Options;

namespace Pipeline.Web.Access;

/// <summary>
/// Browser sign-in, kept to one small server-rendered page: GET /signin shows a form that takes a token (when tokens are
/// configured) and a link to /signin/entra (when Entra ID is); POST /signin exchanges a valid token for the session
/// cookie (<see cref="SessionCookie"/>: name and role, not the token); GET /signin/entra starts the OpenID Connect
/// sign-in; POST /signout ends the session (and the Entra ID one). Both forms carry an antiforgery token. Without any
/// authentication configured there is nothing to sign in to (404).
/// </summary>
public static class SignInPage
{
    public const string Path = "/signin";

    public const string EntraPath = "/signin/entra";

    public const string SignOutPath = "/signout";

    /// <summary>A browser navigating to a page (not a script's or the dashboard's polling requests, which get the 401).</summary>
    public static bool WantsSignIn(HttpRequest request) =>
        HttpMethods.IsGet(request.Method) && request.Headers.Accept.ToString().Contains("text/html", StringComparison.OrdinalIgnoreCase);

    public static string PathFor(HttpRequest request) =>
        $"{Path}?returnUrl={Uri.EscapeDataString(request.PathBase + request.Path + request.QueryString)}";

    public static IEndpointRouteBuilder MapSignIn(this IEndpointRouteBuilder app)
    {
        app.MapGet(Path, (string? returnUrl, HttpContext http, IOptions<WebOptions> web, IAntiforgery antiforgery) =>
            web.Value.AuthenticationConfigured ? Form(http, web.Value, antiforgery, Local(returnUrl), error: null) : NothingToSignInTo()).AllowAnonymous();

        app.MapPost(Path, async (HttpContext http, IOptions<WebOptions> web, IAntiforgery antiforgery, ILoggerFactory logs) =>
        {
            if (!web.Value.TokensConfigured) return NothingToSignInTo();
            if (!await antiforgery.IsRequestValidAsync(http))
            {
                return Form(http, web.Value, antiforgery, "/", "The sign-in form had expired or did not come from this site; please try again.", StatusCodes.Status400BadRequest);
            }
            var form = await http.Request.ReadFormAsync(http.RequestAborted);
            var returnUrl = Local(form["returnUrl"]);
            if (AccessTokenAuthenticationHandler.Match(web.Value, form["token"].ToString().Trim()) is not { } token)
            {
                logs.CreateLogger(typeof(SignInPage)).LogWarning("Rejected a sign-in token from {RemoteIp}", http.Connection.RemoteIpAddress);
                return Form(http, web.Value, antiforgery, returnUrl, "That is not a token configured on this server (Pipeline:Web:AccessToken or Pipeline:Web:Tokens).",
                    StatusCodes.Status401Unauthorized);
            }
            await http.SignInAsync(SessionCookie.Scheme, AccessRoles.ForToken(SessionCookie.Scheme, token), new AuthenticationProperties { IsPersistent = false });
            return Results.Redirect(returnUrl, preserveMethod: false);
        }).AllowAnonymous().DisableAntiforgery();

        app.MapGet(EntraPath, (string? returnUrl, IOptions<WebOptions> web) => web.Value.EntraId.Configured
            ? Results.Challenge(new AuthenticationProperties { RedirectUri = Local(returnUrl) }, [OpenIdConnectDefaults.AuthenticationScheme])
            : Results.Problem("Entra ID sign-in is not configured (Pipeline:Web:EntraId).", statusCode: StatusCodes.Status404NotFound)).AllowAnonymous();

        app.MapPost(SignOutPath, async (HttpContext http, IOptions<WebOptions> web, IAntiforgery antiforgery) =>
        {
            if (!await antiforgery.IsRequestValidAsync(http)) return Results.Problem("The sign-out form had expired or did not come from this site.", statusCode: StatusCodes.Status400BadRequest);
            var entra = web.Value.EntraId.Configured && http.User.FindFirst(AccessRoles.SourceClaim)?.Value == AccessRoles.EntraSource;
            return Results.SignOut(new AuthenticationProperties { RedirectUri = Path },
                entra ? [SessionCookie.Scheme, OpenIdConnectDefaults.AuthenticationScheme] : [SessionCookie.Scheme]);
        }).AllowAnonymous().DisableAntiforgery();
        return app;
    }

    private static IResult NothingToSignInTo() =>
        Results.Problem("No authentication is configured (Pipeline:Web:AccessToken, Pipeline:Web:Tokens or Pipeline:Web:EntraId), so there is nothing to sign in to.",
            statusCode: StatusCodes.Status404NotFound);

    /// <summary>Only a path on this host: an absolute or protocol-relative URL would make the form an open redirect.</summary>
    internal static string Local(string? returnUrl) =>
        returnUrl is { Length: > 0 } u && u[0] == '/' && (u.Length == 1 || (u[1] != '/' && u[1] != '\\')) && !u.Any(char.IsControl) ? u : "/";

    private static IResult Form(HttpContext http, WebOptions web, IAntiforgery antiforgery, string returnUrl, string? error, int status = StatusCodes.Status200OK)
    {
        static string E(string? s) => WebUtility.HtmlEncode(s ?? "");
        var tokens = antiforgery.GetAndStoreTokens(http);
        var hidden = $"<input type=\"hidden\" name=\"{E(tokens.FormFieldName)}\" value=\"{E(tokens.RequestToken)}\">";
        var message = error is null ? "" : $"<p role=\"alert\" style=\"color:#b00020\">{E(error)}</p>";
        var signedIn = SessionCookie.Current(http) is { } user
            ? $"""
              <p>Signed in as <strong>{E(user.Identity!.Name)}</strong> ({E(string.Join(", ", user.FindAll(System.Security.Claims.ClaimTypes.Role).Select(c => c.Value).DefaultIfEmpty("no role")))}).</p>
              <form method="post" action="{SignOutPath}">{hidden}<button type="submit">Sign out</button></form>
              """
            : "";
        var tokenForm = web.TokensConfigured
            ? $"""
              <form method="post" action="{Path}">
                {hidden}
                <input type="hidden" name="returnUrl" value="{E(returnUrl)}">
                <label>Access token<br><input name="token" type="password" autocomplete="current-password" required autofocus style="width:100%"></label>
                <p><button type="submit">Sign in</button></p>
              </form>
              """
            : "";
        var entra = web.EntraId.Configured
            ? $"<p><a href=\"{EntraPath}?returnUrl={E(Uri.EscapeDataString(returnUrl))}\">Sign in with Microsoft (Entra ID)</a></p>"
            : "";
        var html = $$"""
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>Sign in · ConvRNN Pipeline</title>
            <meta name="viewport" content="width=device-width, initial-scale=1"></head>
            <body style="font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto">
            <h1 style="font-size:1.4rem">ConvRNN Pipeline</h1>
            {{signedIn}}
            <p>Sign in with a token configured on this server{{(web.EntraId.Configured ? " or with your Microsoft account" : "")}}.</p>
            {{message}}
            {{tokenForm}}
            {{entra}}
            </body></html>
            """;
        return Results.Content(html, "text/html; charset=utf-8", statusCode: status);
    }
}
