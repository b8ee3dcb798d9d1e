using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;

namespace Pipeline.Web.Tests;

/// <summary>Hosts that run jobs each run alone: Hangfire keeps part of its configuration in static state (see <see cref="RunSpecErrorsApiTests"/>).</summary>
[CollectionDefinition(nameof(RolesTests), DisableParallelization = true)]
public sealed class RolesCollection;

/// <summary>Named tokens with roles (Pipeline:Web:Tokens): viewers read, operators also launch and open /hangfire; the session cookie carries the role.</summary>
[Collection(nameof(RolesTests))]
public sealed class RolesTests : IClassFixture<RolesTests.Factory>
{
    public const string ViewerToken = "viewer-0c6e2b9a8d47e1b3c2d1f0e9a8b7c65f0c6e2b9a8d47e1b3c2d1f0e9a8b7";
    public const string OperatorToken = "operator-6e2b9a8d47e1b3c2d1f0e9a8b7c65f0c6e2b9a8d47e1b3c2d1f0e9a8";

    private readonly HttpClient _http;

    public RolesTests(Factory factory)
    {
        factory.StartServer();
        _http = factory.RawClient();
    }

    public sealed class Factory : WebFactory
    {
        protected override IEnumerable<(string Key, string Value)> Settings() =>
        [
            ("Pipeline:Web:Tokens:0:Name", "lab-viewer"), ("Pipeline:Web:Tokens:0:Token", ViewerToken), ("Pipeline:Web:Tokens:0:Role", "viewer"),
            ("Pipeline:Web:Tokens:1:Name", "lab-operator"), ("Pipeline:Web:Tokens:1:Token", OperatorToken), ("Pipeline:Web:Tokens:1:Role", "Operator"),
        ];
    }

    private Task<HttpResponseMessage> Send(HttpMethod method, string url, string token, HttpContent? content = null)
    {
        var request = new HttpRequestMessage(method, url) { Content = content };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return _http.SendAsync(request);
    }

    [Fact]
    public async Task A_viewer_token_reads_runs_but_gets_403_on_launching_cancelling_schedules_and_hangfire()
    {
        Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Get, "/api/runs", ViewerToken)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Get, "/api/schedules", ViewerToken)).StatusCode);

        foreach (var (method, url) in new[] { (HttpMethod.Post, "/api/runs"), (HttpMethod.Post, "/api/runs/1/cancel"), (HttpMethod.Post, "/api/stages/1/retry"),
                     (HttpMethod.Post, "/api/schedules"), (HttpMethod.Delete, "/api/schedules/nightly"), (HttpMethod.Get, "/hangfire") })
        {
            var response = await Send(method, url, ViewerToken, method == HttpMethod.Post ? JsonContent.Create(new { preset = "probe-dag" }) : null);

            Assert.True(response.StatusCode == HttpStatusCode.Forbidden, $"{method} {url}: {response.StatusCode}");
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        }
    }

    [Fact]
    public async Task An_operator_token_launches_a_run_and_opens_hangfire()
    {
        var posted = await Send(HttpMethod.Post, "/api/runs", OperatorToken, JsonContent.Create(new { preset = "probe-dag" }));
        var hangfire = await Send(HttpMethod.Get, "/hangfire", OperatorToken);

        Assert.Equal(HttpStatusCode.Created, posted.StatusCode);
        Assert.True((await posted.Content.ReadFromJsonAsync<JsonObject>())!["id"]!.GetValue<long>() > 0);
        Assert.Equal(HttpStatusCode.OK, hangfire.StatusCode);
    }

    [Fact]
    public async Task A_viewer_signed_in_in_a_browser_reads_the_api_by_cookie_and_is_refused_hangfire_with_403()
    {
        var browser = new BrowserSignIn(_http);
        Assert.Equal(HttpStatusCode.Redirect, (await browser.SignInAsync(ViewerToken, "/api/runs")).StatusCode);

        var runs = await browser.GetAsync("/api/runs");
        var hangfire = await browser.GetAsync("/hangfire", "text/html");
        var launch = await browser.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/api/runs") { Content = JsonContent.Create(new { preset = "probe-dag" }) });
        var (page, _, _) = await browser.FormAsync();

        Assert.Equal(HttpStatusCode.OK, runs.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, hangfire.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, launch.StatusCode);
        Assert.Contains("Signed in as <strong>lab-viewer</strong> (viewer)", page, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cookie_sign_in_needs_the_antiforgery_token_and_sign_out_ends_the_session()
    {
        var noAntiforgery = new BrowserSignIn(_http);
        var refused = await noAntiforgery.SignInAsync(OperatorToken, withAntiforgery: false);
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.DoesNotContain("pipeline_session", noAntiforgery.Cookies.Keys);

        var browser = new BrowserSignIn(_http);
        var signedIn = await browser.SignInAsync(OperatorToken, "/hangfire");
        Assert.Equal(HttpStatusCode.Redirect, signedIn.StatusCode);
        Assert.Equal("/hangfire", signedIn.Headers.Location!.OriginalString);
        Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync("/hangfire", "text/html")).StatusCode);
        var session = browser.Cookies["pipeline_session"];

        // A sign-out posted without the form's antiforgery token (another site's form) does nothing.
        var forgedSignOut = await browser.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/signout") { Content = new FormUrlEncodedContent([]) });
        Assert.Equal(HttpStatusCode.BadRequest, forgedSignOut.StatusCode);
        var signOut = await browser.SignOutAsync();

        Assert.Equal(HttpStatusCode.Redirect, signOut.StatusCode);
        Assert.DoesNotContain("pipeline_session", browser.Cookies.Keys);
        var page = await browser.GetAsync("/hangfire", "text/html");
        Assert.Equal(HttpStatusCode.Redirect, page.StatusCode);
        Assert.StartsWith("/signin?returnUrl=", page.Headers.Location!.OriginalString, StringComparison.Ordinal);
        Assert.NotEmpty(session);
    }

    [Fact]
    public async Task A_wrong_token_at_sign_in_shows_an_error_that_does_not_echo_it()
    {
        const string Attempt = "my-guess-7d1c0f3e9b2a4c6d8e0f1a3b5c7d9e1f";
        var browser = new BrowserSignIn(_http);

        var response = await browser.SignInAsync(Attempt, "/hangfire");
        var html = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Contains("role=\"alert\"", html, StringComparison.Ordinal);
        Assert.Contains("That is not a token configured on this server", html, StringComparison.Ordinal);
        Assert.DoesNotContain(Attempt, html, StringComparison.Ordinal);
        Assert.DoesNotContain(ViewerToken, html, StringComparison.Ordinal);
        Assert.DoesNotContain(OperatorToken, html, StringComparison.Ordinal);
        Assert.DoesNotContain("pipeline_session", browser.Cookies.Keys);
    }

    [Fact]
    public async Task Unauthenticated_pages_redirect_to_sign_in_with_a_local_return_url_and_api_calls_get_401()
    {
        var page = await new BrowserSignIn(_http).GetAsync("/runs/7?tab=stages", "text/html");
        var api = await new BrowserSignIn(_http).GetAsync("/api/runs", "application/json");
        var form = await new BrowserSignIn(_http).FormAsync("https://elsewhere.example/");

        Assert.Equal(HttpStatusCode.Redirect, page.StatusCode);
        Assert.Equal("/signin?returnUrl=%2Fruns%2F7%3Ftab%3Dstages", page.Headers.Location!.OriginalString);
        Assert.Equal(HttpStatusCode.Unauthorized, api.StatusCode);
        Assert.Contains("name=\"returnUrl\" value=\"/\"", form.Html, StringComparison.Ordinal);
    }
}
