using System.Net;
using Microsoft.Extensions.Options;

namespace Pipeline.Web.Access;

/// <summary>
/// The addresses the host will listen on, read from the configuration Kestrel binds from: <c>urls</c> (--urls,
/// ASPNETCORE_URLS, DOTNET_URLS, or the default 127.0.0.1:5080 that <see cref="WebExtensions.AddPipelineWeb"/> sets)
/// and Kestrel:Endpoints:*:Url. Both are checked, even where Kestrel would use only one. Endpoints configured in code
/// (KestrelServerOptions.Listen) are not seen.
/// </summary>
public static class ListenAddresses
{
    public static IReadOnlyList<string> Configured(IConfiguration config) =>
    [
        .. (config["urls"] ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
        .. config.GetSection("Kestrel:Endpoints").GetChildren().Select(e => e["Url"]).OfType<string>(),
    ];

    /// <summary>
    /// Loopback: localhost, 127.0.0.0/8, ::1, or a Unix socket. Everything else is reachable from other machines:
    /// 0.0.0.0, [::], * and + (every interface), a host name (Kestrel binds every interface for one), another address,
    /// or a URL that does not parse.
    /// </summary>
    public static bool IsLoopback(string url)
    {
        BindingAddress address;
        try
        {
            address = BindingAddress.Parse(url);
        }
        catch (FormatException)
        {
            return false;
        }
        if (address.IsUnixPipe) return true;
        if (string.Equals(address.Host, "localhost", StringComparison.OrdinalIgnoreCase)) return true;
        return IPAddress.TryParse(address.Host.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip);
    }
}

/// <summary>
/// Start-up checks of <see cref="WebOptions"/>: a token strong enough, and no listening off loopback without one (the
/// API launches runs and serves artifacts; /hangfire deletes and requeues jobs).
/// </summary>
public sealed class WebOptionsValidation(IConfiguration config) : IValidateOptions<WebOptions>
{
    public ValidateOptionsResult Validate(string? name, WebOptions options)
    {
        var failures = new List<string>();
        if (options.Token is { } token && (token.Length < WebOptions.MinTokenLength || token.Any(c => char.IsWhiteSpace(c) || char.IsControl(c))))
        {
            failures.Add($"Pipeline:Web:AccessToken must be at least {WebOptions.MinTokenLength} characters without spaces "
                + $"(it has {token.Length}); generate one with `openssl rand -hex 32`.");
        }
        var open = ListenAddresses.Configured(config).Where(u => !ListenAddresses.IsLoopback(u)).ToList();
        if (!options.AuthenticationConfigured && open.Count > 0) failures.Add(Refusal(open));
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    public static string Refusal(IEnumerable<string> openUrls) =>
        $"Refusing to start: the web host would listen on {string.Join(", ", openUrls)}, which other machines can reach, and no authentication is configured. "
        + "Set Pipeline:Web:AccessToken (environment variable Pipeline__Web__AccessToken) to a secret of at least "
        + $"{WebOptions.MinTokenLength} characters, e.g. `export Pipeline__Web__AccessToken=$(openssl rand -hex 32)`, and send it as "
        + "'Authorization: Bearer <token>'; or listen on loopback only (--urls http://127.0.0.1:5080).";
}
