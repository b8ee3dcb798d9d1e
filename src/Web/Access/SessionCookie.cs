using System.Security.Claims;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.Extensions.Options;

namespace Pipeline.Web.Access;

/// <summary>
/// The browser's session: an ASP.NET Core cookie-authentication ticket (encrypted and signed with the host's data
/// protection keys) holding the name and role claims of whoever signed in — by a token at /signin, or by Entra ID — and
/// never a token. HttpOnly keeps it from scripts; SameSite=Lax keeps other sites' forms from riding on it (writes also
/// need an antiforgery token); Secure whenever the request came over HTTPS; 12 hours, renewed while in use.
/// </summary>
public static class SessionCookie
{
    public const string Scheme = CookieAuthenticationDefaults.AuthenticationScheme;

    public const string Name = "pipeline_session";

    public static readonly TimeSpan Lifetime = TimeSpan.FromHours(12);

    public static void Configure(CookieAuthenticationOptions o)
    {
        o.Cookie.Name = Name;
        o.Cookie.HttpOnly = true;
        o.Cookie.SameSite = SameSiteMode.Lax;
        o.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
        o.Cookie.IsEssential = true;
        o.ExpireTimeSpan = Lifetime;
        o.SlidingExpiration = true;
        o.LoginPath = SignInPage.Path;
        o.ReturnUrlParameter = "returnUrl";
        o.Events.OnRedirectToLogin = ctx => SignInPage.WantsSignIn(ctx.Request)
            ? Redirect(ctx, SignInPage.PathFor(ctx.Request))
            : AccessTokenAuthenticationHandler.Unauthorized(ctx.HttpContext, invalidToken: false);
        o.Events.OnRedirectToAccessDenied = ctx => AccessTokenAuthenticationHandler.Forbidden(ctx.HttpContext);
        o.Events.OnSigningIn = ctx =>
        {
            // An Entra ID sign-in arrives with every claim of the id token; keep only name, roles and ids.
            if (ctx.Principal is { } p && p.FindFirst(AccessRoles.SourceClaim) is null) ctx.Principal = AccessRoles.FromEntraId(p, Scheme);
            return Task.CompletedTask;
        };
        o.Events.OnValidatePrincipal = Revalidate;
    }

    private static Task Redirect(RedirectContext<CookieAuthenticationOptions> ctx, string location)
    {
        ctx.Response.Redirect(location);
        return Task.CompletedTask;
    }

    /// <summary>
    /// A session signed in with a token lasts only while that token is configured, and takes its current role; an Entra
    /// ID session, only while Entra ID is configured. Removing or changing a token signs its browsers out.
    /// </summary>
    private static async Task Revalidate(CookieValidatePrincipalContext ctx)
    {
        var web = ctx.HttpContext.RequestServices.GetRequiredService<IOptions<WebOptions>>().Value;
        var principal = ctx.Principal!;
        switch (principal.FindFirst(AccessRoles.SourceClaim)?.Value)
        {
            case AccessRoles.TokenSource:
                var id = principal.FindFirst(AccessRoles.TokenIdClaim)?.Value;
                var token = web.AllTokens.FirstOrDefault(t => AccessRoles.Canonical(t.Role) is not null && AccessRoles.TokenId(t.Token!) == id);
                if (token is null) break;
                if (!principal.IsInRole(AccessRoles.Canonical(token.Role)!) || principal.Identity?.Name != token.Name)
                {
                    ctx.ReplacePrincipal(AccessRoles.ForToken(Scheme, token));
                    ctx.ShouldRenew = true;
                }
                return;
            case AccessRoles.EntraSource when web.EntraId.Configured:
                return;
        }
        ctx.RejectPrincipal();
        await ctx.HttpContext.SignOutAsync(Scheme);
    }

    public static ClaimsPrincipal? Current(HttpContext http) => http.User.Identity?.IsAuthenticated == true ? http.User : null;
}
