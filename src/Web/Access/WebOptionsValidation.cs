using Microsoft.Extensions.Options;

namespace Pipeline.Web.Access;

/// <summary>
/// Start-up checks of <see cref="WebOptions"/>: tokens strong enough, named, unique and with a known role; an Entra ID
/// section complete; and no listening off loopback without any of them (the API launches runs and serves artifacts;
/// /hangfire deletes and requeues jobs). Messages name the setting and never show a token.
/// </summary>
public sealed class WebOptionsValidation(IConfiguration config) : IValidateOptions<WebOptions>
{
    public ValidateOptionsResult Validate(string? name, WebOptions options)
    {
        var failures = new List<string>();
        if (options.Token is { } token) CheckToken($"{WebOptions.Section}:AccessToken", token, failures);
        var seenNames = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        if (options.Token is not null) seenNames.Add(WebOptions.AccessTokenName);
        var seenTokens = new List<(string Field, string Token)>();
        if (options.Token is { } t0) seenTokens.Add(($"{WebOptions.Section}:AccessToken", t0));
        for (var i = 0; i < options.Tokens.Count; i++)
        {
            var entry = options.Tokens[i];
            var field = $"{WebOptions.Section}:Tokens:{i}";
            if (string.IsNullOrWhiteSpace(entry.Name)) failures.Add($"{field}:Name is required: who the token belongs to (shown in the dashboard and the logs), e.g. 'lab-viewer'.");
            else if (!seenNames.Add(entry.Name.Trim())) failures.Add($"{field}:Name '{entry.Name}' is used by another token; names must be unique.");
            if (string.IsNullOrEmpty(entry.Token)) failures.Add($"{field}:Token is required (at least {WebOptions.MinTokenLength} characters; `openssl rand -hex 32`).");
            else
            {
                CheckToken($"{field}:Token", entry.Token, failures);
                if (seenTokens.FirstOrDefault(s => s.Token == entry.Token) is { Field: { } other }) failures.Add($"{field}:Token is the same secret as {other}; every token must be different.");
                seenTokens.Add(($"{field}:Token", entry.Token));
            }
            if (AccessRoles.Canonical(entry.Role) is null)
            {
                failures.Add($"{field}:Role must be '{AccessRoles.Viewer}' or '{AccessRoles.Operator}'"
                    + (string.IsNullOrWhiteSpace(entry.Role) ? " (it is not set)." : $"; got '{entry.Role}'."));
            }
        }
        var entra = options.EntraId;
        if (entra.Requested)
        {
            var section = EntraIdOptions.Section;
            if (string.IsNullOrWhiteSpace(entra.TenantId)) failures.Add($"{section}:TenantId is required for Entra ID sign-in (the directory's tenant id, or 'organizations').");
            if (string.IsNullOrWhiteSpace(entra.ClientId)) failures.Add($"{section}:ClientId is required for Entra ID sign-in (the app registration's application id).");
            if (string.IsNullOrWhiteSpace(entra.ClientSecret) && !entra.HasCertificate)
            {
                failures.Add($"{section}:ClientSecret or {section}:ClientCertificates is required for Entra ID sign-in (the app registration's credential).");
            }
            if (!Uri.TryCreate(entra.EffectiveInstance, UriKind.Absolute, out var instance) || instance.Scheme != Uri.UriSchemeHttps)
            {
                failures.Add($"{section}:Instance must be an https URL such as {EntraIdOptions.DefaultInstance}; got '{entra.Instance}'.");
            }
        }
        var open = ListenAddresses.Configured(config).Where(u => !ListenAddresses.IsLoopback(u)).ToList();
        if (!options.AuthenticationConfigured && open.Count > 0) failures.Add(Refusal(open));
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static void CheckToken(string field, string token, List<string> failures)
    {
        if (token.Length < WebOptions.MinTokenLength || token.Any(c => char.IsWhiteSpace(c) || char.IsControl(c)))
        {
            failures.Add($"{field} must be at least {WebOptions.MinTokenLength} characters without spaces "
                + $"(it has {token.Length}); generate one with `openssl rand -hex 32`.");
        }
    }

    public static string Refusal(IEnumerable<string> openUrls) =>
        $"Refusing to start: the web host would listen on {string.Join(", ", openUrls)}, which other machines can reach, and no authentication is configured. "
        + "Set Pipeline:Web:AccessToken (environment variable Pipeline__Web__AccessToken) to a secret of at least "
        + $"{WebOptions.MinTokenLength} characters, e.g. `export Pipeline__Web__AccessToken=$(openssl rand -hex 32)`, and send it as "
        + "'Authorization: Bearer <token>'; or add named tokens with roles (Pipeline:Web:Tokens:0:Name, :Token, :Role = viewer|operator); "
        + "or configure Entra ID sign-in (Pipeline:Web:EntraId:Instance, :TenantId, :ClientId, :ClientSecret); "
        + "or listen on loopback only (--urls http://127.0.0.1:5080).";
}
