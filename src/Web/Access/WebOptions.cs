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

    /// <summary>
    /// The secret every /api route, artifact download and /hangfire then require (Authorization: Bearer …, or the
    /// sign-in cookie in a browser). Unset or empty: no authentication, which the host allows on loopback only.
    /// </summary>
    public string? AccessToken { get; set; }

    /// <summary>Run an embedded worker in the web host (read once while the services are registered).</summary>
    public bool RunWorker { get; set; } = true;

    public string? Token => string.IsNullOrWhiteSpace(AccessToken) ? null : AccessToken;

    /// <summary>Whether callers must authenticate; the sign-in and roles of the dashboard issue will add to this.</summary>
    public bool AuthenticationConfigured => Token is not null;
}
