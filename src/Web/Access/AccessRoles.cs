using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;

namespace Pipeline.Web.Access;

/// <summary>
/// The two roles and the principal every sign-in ends in: a name claim and a role claim, whatever the credential (a
/// bearer token, the session cookie, Entra ID), so the policies (<see cref="AccessPolicies"/>) check one thing.
/// </summary>
public static class AccessRoles
{
    /// <summary>Reads runs, stages, metrics and schedules; downloads artifacts.</summary>
    public const string Viewer = "viewer";

    /// <summary>Everything a viewer does, and launches, cancels, retries and edits schedules; the Hangfire dashboard.</summary>
    public const string Operator = "operator";

    /// <summary>The Entra ID app roles (the id token's <c>roles</c> claim) and the role each stands for.</summary>
    public const string EntraViewer = "Pipeline.Viewer";

    public const string EntraOperator = "Pipeline.Operator";

    /// <summary>How the caller signed in: <c>token</c> or <c>entra-id</c>.</summary>
    public const string SourceClaim = "pipeline:source";

    /// <summary>On a session signed in with a token: which token (<see cref="TokenId"/>, a digest), so that removing or changing it ends the session.</summary>
    public const string TokenIdClaim = "pipeline:token_id";

    public const string TokenSource = "token";

    public const string EntraSource = "entra-id";

    public static bool IsKnown(string? role) => role is Viewer or Operator;

    /// <summary>A role name as configured (<c>Viewer</c>, <c>OPERATOR</c>) in its canonical spelling, or null when unknown.</summary>
    public static string? Canonical(string? role) => role?.Trim().ToLowerInvariant() is { } r && IsKnown(r) ? r : null;

    public static ClaimsPrincipal Principal(string authenticationType, string name, IEnumerable<string> roles, string source, IEnumerable<Claim>? extra = null)
    {
        var identity = new ClaimsIdentity(authenticationType, ClaimTypes.Name, ClaimTypes.Role);
        identity.AddClaim(new Claim(ClaimTypes.Name, name));
        foreach (var role in roles.Distinct()) identity.AddClaim(new Claim(ClaimTypes.Role, role));
        identity.AddClaim(new Claim(SourceClaim, source));
        if (extra is not null) identity.AddClaims(extra);
        return new ClaimsPrincipal(identity);
    }

    public static ClaimsPrincipal ForToken(string authenticationType, NamedToken token) =>
        Principal(authenticationType, token.Name!, [Canonical(token.Role)!], TokenSource, [new Claim(TokenIdClaim, TokenId(token.Token!))]);

    /// <summary>A digest naming a token without revealing it (kept inside the encrypted session ticket).</summary>
    public static string TokenId(string token) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes("pipeline-web-token-id\n" + token)))[..32];

    /// <summary>
    /// The principal an Entra ID sign-in leaves: the user's name (preferred_username, else name) and the roles its app
    /// roles grant. A user without either app role signs in but is refused everything (403).
    /// </summary>
    public static ClaimsPrincipal FromEntraId(ClaimsPrincipal signedIn, string authenticationType)
    {
        var name = signedIn.FindFirst("preferred_username")?.Value ?? signedIn.FindFirst("name")?.Value
            ?? signedIn.Identity?.Name ?? signedIn.FindFirst(ClaimTypes.Name)?.Value ?? "Entra ID user";
        var appRoles = signedIn.Claims.Where(c => c.Type is "roles" or ClaimTypes.Role).Select(c => c.Value);
        var roles = appRoles.Select(r => r switch
        {
            EntraOperator => Operator,
            EntraViewer => Viewer,
            _ => null,
        }).OfType<string>();
        var keep = signedIn.Claims.Where(c => c.Type is "oid" or "tid" or "http://schemas.microsoft.com/identity/claims/objectidentifier"
            or "http://schemas.microsoft.com/identity/claims/tenantid").Select(c => new Claim(c.Type, c.Value));
        return Principal(authenticationType, name, roles, EntraSource, keep);
    }
}
