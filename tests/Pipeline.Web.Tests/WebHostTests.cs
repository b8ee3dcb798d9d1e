using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;

namespace Pipeline.Web.Tests;

/// <summary>The web host without an access token, on loopback: everything is open, as before authentication existed.</summary>
public sealed class WebHostTests : IClassFixture<WebHostTests.Factory>
{
    private readonly Factory _factory;
    private readonly HttpClient _http;

    public WebHostTests(Factory factory)
    {
        _factory = factory;
        _http = factory.CreateClient();
    }

    /// <summary>No access token: the host runs on loopback only, open as before authentication existed.</summary>
    public sealed class Factory : WebFactory;

    [Fact]
    public async Task Healthz_reports_the_run_store_and_the_artifact_store()
    {
        var health = await _http.GetFromJsonAsync<JsonObject>("/healthz");

        Assert.Equal("Healthy", health!["status"]!.GetValue<string>());
        Assert.Equal("Healthy", health["checks"]!["run-store"]!["status"]!.GetValue<string>());
        Assert.Equal("filesystem", health["checks"]!["artifact-store"]!["description"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_run_posted_by_preset_executes_and_its_artifacts_download_with_matching_sha256()
    {
        var posted = await _http.PostAsJsonAsync("/api/runs", new { preset = "probe-dag", set = new[] { "stages.source.params.note=web" } });
        Assert.Equal(HttpStatusCode.Created, posted.StatusCode);
        var id = (await posted.Content.ReadFromJsonAsync<JsonObject>())!["id"]!.GetValue<long>();

        var run = await WebFactory.UntilEndedAsync(() => _http.GetFromJsonAsync<JsonObject>($"/api/runs/{id}"));
        Assert.True(run["status"]!.GetValue<string>() == "succeeded", run.ToJsonString());
        var artifact = run["stages"]![0]!["artifacts"]![0]!;
        var bytes = await _http.GetByteArrayAsync($"/api/artifacts/{artifact["id"]}/download");
        Assert.Equal(artifact["sha256"]!.GetValue<string>(), Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes)));
        var list = await _http.GetFromJsonAsync<JsonArray>("/api/runs");
        Assert.Contains(list!, r => r!["id"]!.GetValue<long>() == id);
    }

    [Fact]
    public async Task Controlling_a_run_or_stage_that_does_not_exist_answers_404_naming_it()
    {
        var retry = await _http.PostAsync("/api/runs/999999/retry", null);
        var rerun = await _http.PostAsync("/api/stages/999999/rerun", null);

        Assert.Equal(HttpStatusCode.NotFound, retry.StatusCode);
        Assert.Contains("Run 999999 does not exist.", await retry.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, rerun.StatusCode);
        Assert.Contains("Stage 999999 does not exist.", await rerun.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_invalid_run_request_is_rejected_with_the_offending_field_named()
    {
        var unknownField = await _http.PostAsJsonAsync("/api/runs", new { preset = "probe-dag", set = new[] { "stages.left.params.secs=1" } });
        var noSuchPreset = await _http.PostAsJsonAsync("/api/runs", new { preset = "../../etc/passwd" });
        var badSpec = await _http.PostAsJsonAsync("/api/runs", new { spec = new { name = "x", stages = new { a = new { kind = "nope" } } } });

        Assert.Equal(HttpStatusCode.BadRequest, unknownField.StatusCode);
        Assert.Contains("stages.left.params.secs", await unknownField.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.BadRequest, noSuchPreset.StatusCode);
        Assert.Contains("no preset", await noSuchPreset.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.BadRequest, badSpec.StatusCode);
        Assert.Contains("stages.a.kind", await badSpec.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.NotFound, (await _http.GetAsync("/api/runs/999999")).StatusCode);
    }

    [Fact]
    public async Task The_hangfire_dashboard_answers_local_requests()
    {
        var response = await _http.GetAsync("/hangfire");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("ConvRNN Pipeline jobs", await response.Content.ReadAsStringAsync());
        Assert.StartsWith("http://127.0.0.1:", _factory.ClientOptions.BaseAddress.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_a_token_on_loopback_the_api_and_downloads_need_no_credentials_and_there_is_no_sign_in()
    {
        var runs = await _http.GetAsync("/api/runs");
        var missingArtifact = await _http.GetAsync("/api/artifacts/999999/download");
        var signIn = await _http.GetAsync("/signin");

        Assert.Equal(HttpStatusCode.OK, runs.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, missingArtifact.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, signIn.StatusCode);
    }
}
