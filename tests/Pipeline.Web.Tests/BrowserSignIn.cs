using System.Net;
using System.Text.RegularExpressions;

namespace Pipeline.Web.Tests;

/// <summary>What a browser does at /signin, by hand: fetch the form (its antiforgery field and cookie), post it back, keep the cookies.</summary>
public sealed partial class BrowserSignIn(HttpClient http)
{
    /// <summary>Cookies as a browser would send them back (name=value), by name.</summary>
    public Dictionary<string, string> Cookies { get; } = [];

    public string CookieHeader => string.Join("; ", Cookies.Select(c => $"{c.Key}={c.Value}"));

    public async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request)
    {
        if (Cookies.Count > 0) request.Headers.Add("Cookie", CookieHeader);
        var response = await http.SendAsync(request);
        Keep(response);
        return response;
    }

    public Task<HttpResponseMessage> GetAsync(string url, string? accept = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, url);
        if (accept is not null) request.Headers.Accept.ParseAdd(accept);
        return SendAsync(request);
    }

    /// <summary>GET /signin and the antiforgery field of its first form.</summary>
    public async Task<(string Html, string FieldName, string RequestToken)> FormAsync(string? returnUrl = null)
    {
        var page = await GetAsync("/signin" + (returnUrl is null ? "" : "?returnUrl=" + Uri.EscapeDataString(returnUrl)), "text/html");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        var html = await page.Content.ReadAsStringAsync();
        var field = HiddenAntiforgery().Match(html);
        Assert.True(field.Success, html);
        return (html, WebUtility.HtmlDecode(field.Groups["name"].Value), WebUtility.HtmlDecode(field.Groups["value"].Value));
    }

    public async Task<HttpResponseMessage> SignInAsync(string token, string returnUrl = "/hangfire", bool withAntiforgery = true)
    {
        var (_, name, value) = await FormAsync(returnUrl);
        var fields = new List<KeyValuePair<string, string>> { new("token", token), new("returnUrl", returnUrl) };
        if (withAntiforgery) fields.Add(new(name, value));
        return await SendAsync(new HttpRequestMessage(HttpMethod.Post, "/signin") { Content = new FormUrlEncodedContent(fields) });
    }

    public async Task<HttpResponseMessage> SignOutAsync()
    {
        var (_, name, value) = await FormAsync();
        return await SendAsync(new HttpRequestMessage(HttpMethod.Post, "/signout") { Content = new FormUrlEncodedContent([new(name, value)]) });
    }

    private void Keep(HttpResponseMessage response)
    {
        if (!response.Headers.TryGetValues("Set-Cookie", out var cookies)) return;
        foreach (var cookie in cookies)
        {
            var pair = cookie.Split(';')[0];
            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            var (key, value) = (pair[..eq], pair[(eq + 1)..]);
            if (value.Length == 0 || cookie.Contains("expires=Thu, 01 Jan 1970", StringComparison.OrdinalIgnoreCase)) Cookies.Remove(key);
            else Cookies[key] = value;
        }
    }

    [GeneratedRegex("<input type=\"hidden\" name=\"(?<name>__RequestVerificationToken[^\"]*)\" value=\"(?<value>[^\"]+)\">")]
    private static partial Regex HiddenAntiforgery();
}
