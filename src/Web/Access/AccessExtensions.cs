using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Options;

namespace Pipeline.Web.Access;

public static class AccessExtensions
{
    /// <summary>Pipeline:Web (validated at start-up, including the refusal to listen off loopback without a token), the access-token scheme and the policies.</summary>
    public static IServiceCollection AddWebAccess(this IServiceCollection services, IConfiguration config)
    {
        services.AddOptions<WebOptions>().Bind(config.GetSection(WebOptions.Section)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<WebOptions>, WebOptionsValidation>();
        services.AddAuthentication(AccessTokenAuthenticationHandler.SchemeName)
            .AddScheme<Microsoft.AspNetCore.Authentication.AuthenticationSchemeOptions, AccessTokenAuthenticationHandler>(AccessTokenAuthenticationHandler.SchemeName, null);
        services.AddAuthorization();
        services.AddOptions<AuthorizationOptions>().Configure<IOptions<WebOptions>>((o, web) => AccessPolicies.Configure(o, web.Value));
        return services;
    }

    /// <summary>Authentication and authorisation middleware, and the browser sign-in (answering 404 without a token).</summary>
    public static WebApplication UseWebAccess(this WebApplication app)
    {
        app.UseAuthentication();
        app.UseAuthorization();
        app.MapSignIn();
        return app;
    }
}
