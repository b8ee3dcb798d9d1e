using Microsoft.Extensions.Configuration;
using Pipeline.Web.Access;

namespace Pipeline.Web.Tests;

/// <summary>Start-up checks of Pipeline:Web: each message names its field and never shows a token.</summary>
public sealed class WebOptionsValidationTests
{
    private const string Good = "0123456789abcdef0123456789abcdef0123";

    private static IReadOnlyList<string> Failures(WebOptions options, string urls = "http://127.0.0.1:5080")
    {
        var config = new ConfigurationBuilder().AddInMemoryCollection([new("urls", urls)]).Build();
        var result = new WebOptionsValidation(config).Validate(null, options);
        return result.Failed ? [.. result.Failures] : [];
    }

    private static NamedToken T(string? name, string? token, string? role) => new() { Name = name, Token = token, Role = role };

    [Fact]
    public void Named_tokens_need_a_unique_name_a_long_unique_secret_and_a_known_role()
    {
        var failures = Failures(new WebOptions
        {
            AccessToken = Good,
            Tokens = [T("", "short-secret", "viewer"), T("a", Good, "admin"), T("a", Good + "x", null), T(WebOptions.AccessTokenName, Good + "y", "viewer")],
        });

        Assert.Contains(failures, f => f.StartsWith("Pipeline:Web:Tokens:0:Name is required", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("Pipeline:Web:Tokens:0:Token must be at least 32 characters", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("Pipeline:Web:Tokens:1:Token is the same secret as Pipeline:Web:AccessToken", StringComparison.Ordinal));
        Assert.Contains(failures, f => f == "Pipeline:Web:Tokens:1:Role must be 'viewer' or 'operator'; got 'admin'.");
        Assert.Contains(failures, f => f.StartsWith("Pipeline:Web:Tokens:2:Name 'a' is used by another token", StringComparison.Ordinal));
        Assert.Contains(failures, f => f == "Pipeline:Web:Tokens:2:Role must be 'viewer' or 'operator' (it is not set).");
        Assert.Contains(failures, f => f.StartsWith("Pipeline:Web:Tokens:3:Name 'access-token' is used by another token", StringComparison.Ordinal));
        Assert.DoesNotContain(failures, f => f.Contains(Good, StringComparison.Ordinal) || f.Contains("short-secret", StringComparison.Ordinal));
    }

    [Fact]
    public void A_partial_entra_id_section_names_the_missing_fields()
    {
        var failures = Failures(new WebOptions { EntraId = new EntraIdOptions { ClientId = "7c9e6679", Instance = "http://login.example/" } });

        Assert.Contains(failures, f => f.StartsWith("Pipeline:Web:EntraId:TenantId is required", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("Pipeline:Web:EntraId:ClientSecret or Pipeline:Web:EntraId:ClientCertificates is required", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("Pipeline:Web:EntraId:Instance must be an https URL", StringComparison.Ordinal));
    }

    [Fact]
    public void Off_loopback_a_viewer_token_list_or_entra_id_is_enough_and_nothing_is_refused_naming_every_setting()
    {
        var open = "http://0.0.0.0:5080";
        var entra = new EntraIdOptions { TenantId = "t", ClientId = "c", ClientSecret = "s" };

        Assert.Empty(Failures(new WebOptions { Tokens = [T("viewer", Good, "Viewer")] }, open));
        Assert.Empty(Failures(new WebOptions { EntraId = entra }, open));
        var refusal = Assert.Single(Failures(new WebOptions(), open));
        Assert.StartsWith("Refusing to start: the web host would listen on http://0.0.0.0:5080", refusal, StringComparison.Ordinal);
        foreach (var setting in new[] { "Pipeline:Web:AccessToken", "Pipeline:Web:Tokens:0:Name, :Token, :Role", "Pipeline:Web:EntraId:Instance, :TenantId, :ClientId, :ClientSecret" })
        {
            Assert.Contains(setting, refusal, StringComparison.Ordinal);
        }
    }
}
