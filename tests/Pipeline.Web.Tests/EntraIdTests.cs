using System.Net;
using System.Security.Claims;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.OpenIdConnect;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;
using Pipeline.Web.Access;

namespace Pipeline.Web.Tests;

/// <summary>Pipeline:Web:EntraId registers Microsoft.Identity.Web's OpenID Connect scheme; /signin/entra sends the browser to the tenant's authorize endpoint.</summary>
public sealed class EntraIdTests : IClassFixture<EntraIdTests.Factory>
{
    private const string Tenant = "3f2b8c1e-5d4a-4e6f-9a7b-1c2d3e4f5a6b";
    private const string Client = "7c9e6679-7425-40de-944b-e07fc1f90ae7";

    private readonly Factory _factory;
    private readonly HttpClient _http;

    public EntraIdTests(Factory factory)
    {
        _factory = factory;
        factory.StartServer();
        _http = factory.RawClient();
    }

    public sealed class Factory : WebFactory
    {
        protected override IEnumerable<(string Key, string Value)> Settings() =>
        [
            ("Pipeline:Web:RunWorker", "false"),
            ("Pipeline:Web:EntraId:Instance", "https://login.microsoftonline.com/"), ("Pipeline:Web:EntraId:TenantId", Tenant),
            ("Pipeline:Web:EntraId:ClientId", Client), ("Pipeline:Web:EntraId:ClientSecret", "test-secret-not-used-without-a-network"),
        ];

        protected override void ConfigureWebHost(IWebHostBuilder builder)
        {
            base.ConfigureWebHost(builder);
            // No network here: the handler would fetch {Instance}{TenantId}/v2.0/.well-known/openid-configuration before
            // redirecting. The test gives it that document's one field the challenge needs, derived from the Authority
            // that Microsoft.Identity.Web built from Instance and TenantId, so the Location still checks that build.
            builder.ConfigureTestServices(services => services.Configure<OpenIdConnectOptions>(OpenIdConnectDefaults.AuthenticationScheme, o =>
                o.Configuration = new OpenIdConnectConfiguration { AuthorizationEndpoint = o.Authority!.TrimEnd('/').Replace("/v2.0", "", StringComparison.Ordinal) + "/oauth2/v2.0/authorize" }));
        }
    }

    [Fact]
    public async Task The_openid_connect_scheme_is_registered_beside_the_token_and_session_schemes()
    {
        var schemes = _factory.Services.GetRequiredService<IAuthenticationSchemeProvider>();

        var oidc = await schemes.GetSchemeAsync(OpenIdConnectDefaults.AuthenticationScheme);

        Assert.Equal(typeof(OpenIdConnectHandler), oidc?.HandlerType);
        Assert.NotNull(await schemes.GetSchemeAsync(SessionCookie.Scheme));
        Assert.NotNull(await schemes.GetSchemeAsync(AccessTokenAuthenticationHandler.SchemeName));
    }

    [Fact]
    public async Task A_challenge_at_signin_entra_redirects_to_the_configured_tenant_s_authorize_endpoint()
    {
        var response = await _http.GetAsync("/signin/entra?returnUrl=%2Fruns");

        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        var location = response.Headers.Location!;
        Assert.Equal("login.microsoftonline.com", location.Host);
        Assert.Equal($"/{Tenant}/oauth2/v2.0/authorize", location.AbsolutePath);
        var query = System.Web.HttpUtility.ParseQueryString(location.Query);
        Assert.Equal(Client, query["client_id"]);
        Assert.EndsWith("/signin-oidc", query["redirect_uri"], StringComparison.Ordinal);
        Assert.Contains("openid", query["scope"], StringComparison.Ordinal);
        Assert.DoesNotContain("test-secret", location.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_sign_in_page_offers_entra_id_and_no_token_form_when_no_token_is_configured()
    {
        var html = await (await _http.GetAsync("/signin?returnUrl=%2Fruns")).Content.ReadAsStringAsync();
        var api = await _http.GetAsync("/api/runs");

        Assert.Contains("href=\"/signin/entra?returnUrl=%2Fruns\"", html, StringComparison.Ordinal);
        Assert.DoesNotContain("name=\"token\"", html, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Unauthorized, api.StatusCode);
    }

    [Theory]
    [InlineData(new[] { "Pipeline.Operator" }, new[] { "operator" })]
    [InlineData(new[] { "Pipeline.Viewer" }, new[] { "viewer" })]
    [InlineData(new[] { "Pipeline.Viewer", "Pipeline.Operator", "Other.Role" }, new[] { "viewer", "operator" })]
    [InlineData(new string[0], new string[0])]
    public void Entra_app_roles_map_to_the_pipeline_roles_and_other_claims_are_dropped(string[] appRoles, string[] roles)
    {
        var identity = new ClaimsIdentity([new Claim("preferred_username", "ada@lab.example"), new Claim("email", "ada@lab.example"), new Claim("oid", "1234"),
            .. appRoles.Select(r => new Claim("roles", r))], "AuthenticationTypes.Federation");

        var principal = AccessRoles.FromEntraId(new ClaimsPrincipal(identity), SessionCookie.Scheme);

        Assert.Equal("ada@lab.example", principal.Identity!.Name);
        Assert.Equal(roles.Order(), principal.FindAll(ClaimTypes.Role).Select(c => c.Value).Order());
        Assert.Equal(AccessRoles.EntraSource, principal.FindFirst(AccessRoles.SourceClaim)!.Value);
        Assert.Null(principal.FindFirst("email"));
        Assert.Equal("1234", principal.FindFirst("oid")!.Value);
    }
}
