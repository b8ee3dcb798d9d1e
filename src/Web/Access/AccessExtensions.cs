using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Authentication.OpenIdConnect;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.DataProtection.Repositories;
using Microsoft.Extensions.Options;
using Microsoft.Identity.Web;
using Pipeline.Jobs.Configuration;

namespace Pipeline.Web.Access;

public static class AccessExtensions
{
    /// <summary>The default scheme: a bearer header goes to the token handler, everything else to the session cookie.</summary>
    public const string Scheme = "Pipeline";

    /// <summary>
    /// Pipeline:Web (validated at start-up, including the refusal to listen off loopback without authentication), the
    /// schemes (bearer tokens, the session cookie, Entra ID when Pipeline:Web:EntraId is set), antiforgery and the policies.
    /// </summary>
    public static IServiceCollection AddWebAccess(this IServiceCollection services, IConfiguration config)
    {
        services.AddOptions<WebOptions>().Bind(config.GetSection(WebOptions.Section))
            .PostConfigure(o => o.EntraId.HasCertificate = config.GetSection($"{EntraIdOptions.Section}:ClientCertificates").GetChildren().Any()
                || config.GetSection($"{EntraIdOptions.Section}:ClientCredentials").GetChildren().Any())
            .ValidateOnStart();
        services.AddSingleton<IValidateOptions<WebOptions>, WebOptionsValidation>();

        var auth = services.AddAuthentication(o =>
        {
            o.DefaultScheme = Scheme;
            o.DefaultSignInScheme = SessionCookie.Scheme;
        });
        auth.AddPolicyScheme(Scheme, "Bearer token or session", o => o.ForwardDefaultSelector = http =>
            AccessTokenAuthenticationHandler.HasBearer(http.Request) ? AccessTokenAuthenticationHandler.SchemeName : SessionCookie.Scheme);
        auth.AddScheme<AuthenticationSchemeOptions, AccessTokenAuthenticationHandler>(AccessTokenAuthenticationHandler.SchemeName, null);
        var entra = config.GetSection(EntraIdOptions.Section).Get<EntraIdOptions>() ?? new();
        // Microsoft.Identity.Web adds the cookie scheme itself when it signs in browsers; either way it is the one session cookie.
        if (entra.Configured) auth.AddMicrosoftIdentityWebApp(config.GetSection(EntraIdOptions.Section), OpenIdConnectDefaults.AuthenticationScheme, SessionCookie.Scheme);
        else auth.AddCookie(SessionCookie.Scheme);
        services.Configure<CookieAuthenticationOptions>(SessionCookie.Scheme, SessionCookie.Configure);

        services.AddAntiforgery(o =>
        {
            o.Cookie.Name = "pipeline_antiforgery";
            o.Cookie.HttpOnly = true;
            o.Cookie.SameSite = SameSiteMode.Strict;
            o.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
        });
        // Session tickets stay valid across restarts: the key ring lives in the data folder (several dashboard hosts need it shared).
        services.AddDataProtection().SetApplicationName("convrnn-pipeline");
        services.AddOptions<KeyManagementOptions>().Configure<PipelineMode, ILoggerFactory>((o, mode, logs) =>
            o.XmlRepository = new FileSystemXmlRepository(new DirectoryInfo(Path.Combine(mode.DataFolder, "data-protection-keys")), logs));

        services.AddAuthorization();
        services.AddOptions<AuthorizationOptions>().Configure<IOptions<WebOptions>>((o, web) => AccessPolicies.Configure(o, web.Value));
        return services;
    }

    /// <summary>Authentication and authorisation middleware, and the browser sign-in (answering 404 without authentication).</summary>
    public static WebApplication UseWebAccess(this WebApplication app)
    {
        app.UseAuthentication();
        app.UseAuthorization();
        app.MapSignIn();
        return app;
    }
}
