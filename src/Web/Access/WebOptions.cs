namespace Pipeline.Web.Access;

/// <summary>
/// Settings under "Pipeline:Web" (appsettings.json or Pipeline__Web__… environment variables), validated at start-up by
/// <see cref="WebOptionsValidation"/>.
/// </summary>
public sealed class WebOptions
{
    public const string Section = "Pipeline:Web";

    /// <summary>The shortest access token accepted: `openssl rand -hex 32` gives 64 characters.</summary>
    public const int MinTokenLength = 32;

    /// <summary>The name <see cref="AccessToken"/> signs in under (it has no Name setting of its own).</summary>
    public const string AccessTokenName = "access-token";

    /// <summary>
    /// One operator token (the setting from before roles existed, kept meaning what it meant): every /api route,
    /// artifact download and /hangfire. Unset or empty: none.
    /// </summary>
    public string? AccessToken { get; set; }

    /// <summary>Named tokens with a role each (Pipeline:Web:Tokens:0:Name, :Token, :Role = viewer | operator).</summary>
    public List<NamedToken> Tokens { get; set; } = [];

    /// <summary>Sign-in with Microsoft Entra ID (OpenID Connect); see <see cref="EntraIdOptions"/>.</summary>
    public EntraIdOptions EntraId { get; set; } = new();

    /// <summary>Run an embedded worker in the web host (read once while the services are registered).</summary>
    public bool RunWorker { get; set; } = true;

    public string? Token => string.IsNullOrWhiteSpace(AccessToken) ? null : AccessToken;

    /// <summary>Every configured token with its name and role: <see cref="AccessToken"/> as an operator, then <see cref="Tokens"/>.</summary>
    public IReadOnlyList<NamedToken> AllTokens =>
    [
        .. Token is { } operatorToken ? [new NamedToken { Name = AccessTokenName, Token = operatorToken, Role = AccessRoles.Operator }] : Array.Empty<NamedToken>(),
        .. Tokens.Where(t => !string.IsNullOrEmpty(t.Token)),
    ];

    public bool TokensConfigured => AllTokens.Count > 0;

    /// <summary>Whether callers must authenticate (by a token, or by Entra ID). Without either the host starts on loopback only.</summary>
    public bool AuthenticationConfigured => TokensConfigured || EntraId.Configured;
}

/// <summary>A token of <see cref="WebOptions.Tokens"/>: who it is (shown in the dashboard and the logs; never the token) and what it may do.</summary>
public sealed class NamedToken
{
    public string? Name { get; set; }

    public string? Token { get; set; }

    /// <summary><c>viewer</c> (reads runs, downloads artifacts) or <c>operator</c> (also launches, cancels, retries, schedules; /hangfire).</summary>
    public string? Role { get; set; }
}

/// <summary>
/// Pipeline:Web:EntraId — the app registration that browsers sign in with, bound as Microsoft.Identity.Web's
/// MicrosoftIdentityOptions (so every setting of its usual "AzureAd" section works here: Instance, TenantId, ClientId,
/// ClientSecret or ClientCertificates, CallbackPath, …). The app roles <c>Pipeline.Viewer</c> and <c>Pipeline.Operator</c>
/// (the token's <c>roles</c> claim) map to <see cref="AccessRoles.Viewer"/> and <see cref="AccessRoles.Operator"/>.
/// Only the fields checked at start-up are declared here.
/// </summary>
public sealed class EntraIdOptions
{
    public const string Section = WebOptions.Section + ":EntraId";

    public const string DefaultInstance = "https://login.microsoftonline.com/";

    public string? Instance { get; set; }

    public string? TenantId { get; set; }

    public string? ClientId { get; set; }

    public string? ClientSecret { get; set; }

    public string? CallbackPath { get; set; }

    /// <summary>Set from the section's ClientCertificates / ClientCredentials lists at validation (Microsoft.Identity.Web reads them itself).</summary>
    public bool HasCertificate { get; set; }

    /// <summary>Any of the section's fields is set: Entra ID is meant to be on (and must then be complete).</summary>
    public bool Requested => !string.IsNullOrWhiteSpace(ClientId) || !string.IsNullOrWhiteSpace(TenantId) || !string.IsNullOrWhiteSpace(Instance)
        || !string.IsNullOrWhiteSpace(ClientSecret) || HasCertificate;

    public bool Configured => !string.IsNullOrWhiteSpace(ClientId) && !string.IsNullOrWhiteSpace(TenantId);

    public string EffectiveInstance => string.IsNullOrWhiteSpace(Instance) ? DefaultInstance : Instance;
}
