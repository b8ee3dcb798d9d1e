using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json.Nodes;

namespace Pipeline.Web.Tests;

/// <summary>With Pipeline:Web:AccessToken set, every /api route, artifact download and /hangfire require it.</summary>
public sealed class AccessTokenTests : IClassFixture<AccessTokenTests.Factory>
{
    public const string Token = "5f0c6e2b9a8d47e1b3c2d1f0e9a8b7c65f0c6e2b9a8d47e1b3c2d1f0e9a8b7c6";

    private readonly HttpClient _http;

    public AccessTokenTests(Factory factory)
    {
        // A plain client on the real port: the factory's Kestrel client follows redirects and keeps cookies whatever its options say.
        factory.StartServer();
        _http = factory.RawClient();
    }

    public sealed class Factory : WebFactory
    {
        protected override IEnumerable<(string Key, string Value)> Settings() => [("Pipeline:Web:AccessToken", Token)];
    }

    private Task<HttpResponseMessage> Send(HttpMethod method, string url, string? token = null, HttpContent? content = null, string? accept = null)
    {
        var request = new HttpRequestMessage(method, url) { Content = content };
        if (token is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (accept is not null) request.Headers.Accept.ParseAdd(accept);
        return _http.SendAsync(request);
    }

    private async Task<JsonObject> FinishedProbeRun()
    {
        var posted = await Send(HttpMethod.Post, "/api/runs", Token, JsonContent.Create(new { preset = "probe-dag" }));
        Assert.Equal(HttpStatusCode.Created, posted.StatusCode);
        var id = (await posted.Content.ReadFromJsonAsync<JsonObject>())!["id"]!.GetValue<long>();
        var run = await WebFactory.UntilEndedAsync(async () => await (await Send(HttpMethod.Get, $"/api/runs/{id}", Token)).Content.ReadFromJsonAsync<JsonObject>());
        Assert.True(run["status"]!.GetValue<string>() == "succeeded", run.ToJsonString());
        return run;
    }

    [Fact]
    public async Task Without_the_token_or_with_a_wrong_one_the_api_downloads_and_hangfire_answer_401_problem_details()
    {
        var artifact = (await FinishedProbeRun())["stages"]![0]!["artifacts"]![0]!["id"]!.GetValue<long>();
        var routes = new (HttpMethod Method, string Url)[]
        {
            (HttpMethod.Get, "/api/runs"), (HttpMethod.Get, "/api/runs/1"), (HttpMethod.Post, "/api/runs"), (HttpMethod.Post, "/api/runs/1/cancel"),
            (HttpMethod.Post, "/api/stages/1/retry"), (HttpMethod.Get, $"/api/artifacts/{artifact}/download"), (HttpMethod.Get, "/hangfire"),
            (HttpMethod.Get, "/hangfire/jobs/enqueued"), (HttpMethod.Get, "/no-such-page"), (HttpMethod.Get, "/api/schedules"),
            (HttpMethod.Post, "/api/schedules"), (HttpMethod.Delete, "/api/schedules/nightly"), (HttpMethod.Post, "/api/schedules/nightly/trigger"),
        };

        foreach (var (method, url) in routes)
        {
            foreach (var token in new[] { null, "wrong", Token[..^1] + "0" })
            {
                var response = await Send(method, url, token, method == HttpMethod.Post ? JsonContent.Create(new { preset = "probe-dag" }) : null);

                Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{method} {url} with {token ?? "no token"}: {response.StatusCode}");
                Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
                var problem = await response.Content.ReadFromJsonAsync<JsonObject>();
                Assert.Equal(401, problem!["status"]!.GetValue<int>());
                Assert.Contains("Pipeline:Web:AccessToken", problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);
                Assert.Equal(token is null ? "Bearer realm=\"pipeline\"" : "Bearer realm=\"pipeline\", error=\"invalid_token\"", response.Headers.WwwAuthenticate.ToString());
            }
        }
    }

    [Fact]
    public async Task With_the_token_runs_launch_their_artifacts_download_and_hangfire_opens()
    {
        var artifact = (await FinishedProbeRun())["stages"]![0]!["artifacts"]![0]!;

        var download = await Send(HttpMethod.Get, $"/api/artifacts/{artifact["id"]}/download", Token);
        var list = await Send(HttpMethod.Get, "/api/runs", Token);
        var hangfire = await Send(HttpMethod.Get, "/hangfire", Token);

        Assert.Equal(HttpStatusCode.OK, download.StatusCode);
        Assert.Equal(artifact["sha256"]!.GetValue<string>(), Convert.ToHexStringLower(SHA256.HashData(await download.Content.ReadAsByteArrayAsync())));
        Assert.Equal(HttpStatusCode.OK, list.StatusCode);
        Assert.Equal(HttpStatusCode.OK, hangfire.StatusCode);
        Assert.Contains("ConvRNN Pipeline jobs", await hangfire.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Healthz_answers_probes_without_the_token_but_only_with_the_overall_status()
    {
        var anonymous = await (await Send(HttpMethod.Get, "/healthz")).Content.ReadFromJsonAsync<JsonObject>();
        var signedIn = await (await Send(HttpMethod.Get, "/healthz", Token)).Content.ReadFromJsonAsync<JsonObject>();

        Assert.Equal("Healthy", anonymous!["status"]!.GetValue<string>());
        Assert.Null(anonymous["checks"]);
        Assert.Equal("filesystem", signedIn!["checks"]!["artifact-store"]!["description"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_browser_is_sent_to_sign_in_and_the_token_it_enters_becomes_an_http_only_lax_session_cookie_for_hangfire()
    {
        var browser = new BrowserSignIn(_http);
        var page = await Send(HttpMethod.Get, "/hangfire/jobs/enqueued", accept: "text/html");
        Assert.Equal(HttpStatusCode.Redirect, page.StatusCode);
        Assert.Equal("/signin?returnUrl=%2Fhangfire%2Fjobs%2Fenqueued", page.Headers.Location!.OriginalString);

        var wrong = await browser.SignInAsync("not-the-token", "/hangfire/jobs/enqueued");
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        Assert.DoesNotContain(browser.Cookies.Keys, k => k == "pipeline_session");
        var right = await browser.SignInAsync(Token, "/hangfire/jobs/enqueued");
        var offSite = await new BrowserSignIn(_http).SignInAsync(Token, "//elsewhere.example/phish");

        Assert.Equal(HttpStatusCode.Redirect, right.StatusCode);
        Assert.Equal("/hangfire/jobs/enqueued", right.Headers.Location!.OriginalString);
        Assert.Equal("/", offSite.Headers.Location!.OriginalString);
        var cookie = Assert.Single(right.Headers.GetValues("Set-Cookie"), c => c.StartsWith("pipeline_session=", StringComparison.Ordinal));
        Assert.Contains("httponly", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("samesite=lax", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(Token, cookie, StringComparison.Ordinal);

        Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync("/hangfire/jobs/enqueued")).StatusCode);
        var forged = new HttpRequestMessage(HttpMethod.Get, "/api/runs");
        forged.Headers.Add("Cookie", "pipeline_session=" + Token);
        Assert.Equal(HttpStatusCode.Unauthorized, (await _http.SendAsync(forged)).StatusCode);
    }
}
