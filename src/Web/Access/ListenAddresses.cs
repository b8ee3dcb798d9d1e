using System.Net;

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
