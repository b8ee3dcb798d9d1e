using System.Net;
using Microsoft.Extensions.Options;

namespace Pipeline.Web.Access;

/// <summary>
/// A minimal sign-in for browsers (the Hangfire dashboard cannot send a header): GET /signin shows a form asking for
/// the access token, POST /signin checks it and sets <see cref="AccessCookie"/>, POST /signout clears it. Without a
/// configured token there is nothing to sign in to (404). The dashboard issue replaces this with real sign-in and roles.
/// </summary>
public static class SignInPage
{
    public const string Path = "/signin";

    /// <summary>A browser navigating to a /hangfire page (not its polling requests, which get the 401).</summary>
    public static bool WantsSignIn(HttpRequest request) =>
        HttpMethods.IsGet(request.Method) && request.Path.StartsWithSegments("/hangfire")
        && request.Headers.Accept.ToString().Contains("text/html", StringComparison.OrdinalIgnoreCase);

    public static string PathFor(HttpRequest request) =>
        $"{Path}?returnUrl={Uri.EscapeDataString(request.PathBase + request.Path + request.QueryString)}";

    public static IEndpointRouteBuilder MapSignIn(this IEndpointRouteBuilder app)
    {
        app.MapGet(Path, (string? returnUrl, IOptions<WebOptions> web) =>
            web.Value.AuthenticationConfigured ? Form(LocalOrHangfire(returnUrl), error: null) : NothingToSignInTo()).AllowAnonymous();
        app.MapPost(Path, async (HttpContext http, IOptions<WebOptions> web) =>
        {
            if (!web.Value.AuthenticationConfigured) return NothingToSignInTo();
            var form = await http.Request.ReadFormAsync(http.RequestAborted);
            var returnUrl = LocalOrHangfire(form["returnUrl"]);
            if (web.Value.Token is not { } token || !AccessTokenAuthenticationHandler.FixedTimeEquals(form["token"].ToString().Trim(), token))
            {
                return Form(returnUrl, "That is not the access token configured on this server (Pipeline:Web:AccessToken).", StatusCodes.Status401Unauthorized);
            }
            http.Response.Cookies.Append(AccessCookie.Name, AccessCookie.Value(token), AccessCookie.Options(http.Request));
            return Results.Redirect(returnUrl, preserveMethod: false);
        }).AllowAnonymous();
        app.MapPost("/signout", (HttpContext http) =>
        {
            http.Response.Cookies.Delete(AccessCookie.Name, AccessCookie.Options(http.Request));
            return Results.Redirect(Path);
        }).AllowAnonymous();
        return app;
    }

    private static IResult NothingToSignInTo() =>
        Results.Problem("No access token is configured (Pipeline:Web:AccessToken), so there is nothing to sign in to.", statusCode: StatusCodes.Status404NotFound);

    /// <summary>Only a path on this host: an absolute or protocol-relative URL would make the form an open redirect.</summary>
    private static string LocalOrHangfire(string? returnUrl) =>
        returnUrl is { Length: > 0 } u && u[0] == '/' && (u.Length == 1 || (u[1] != '/' && u[1] != '\\')) ? u : "/hangfire";

    private static IResult Form(string returnUrl, string? error, int status = StatusCodes.Status200OK)
    {
        var message = error is null ? "" : $"<p role=\"alert\" style=\"color:#b00020\">{WebUtility.HtmlEncode(error)}</p>";
        var html = $$"""
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>Sign in · ConvRNN Pipeline</title>
            <meta name="viewport" content="width=device-width, initial-scale=1"></head>
            <body style="font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto">
            <h1 style="font-size:1.4rem">ConvRNN Pipeline</h1>
            <p>This server requires its access token (Pipeline:Web:AccessToken).</p>
            {{message}}
            <form method="post" action="{{Path}}">
              <input type="hidden" name="returnUrl" value="{{WebUtility.HtmlEncode(returnUrl)}}">
              <label>Access token<br><input name="token" type="password" autocomplete="current-password" required autofocus style="width:100%"></label>
              <p><button type="submit">Sign in</button></p>
            </form>
            </body></html>
            """;
        return Results.Content(html, "text/html; charset=utf-8", statusCode: status);
    }
}
