using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json.Nodes;

namespace Pipeline.Web.Tests;

[CollectionDefinition(nameof(ArtifactPathTests), DisableParallelization = true)]
public sealed class ArtifactPathCollection;

/// <summary>GET /api/runs/{runId}/artifacts/{*path}: a run's recorded artifacts by path, and nothing else, however the path is spelt.</summary>
[Collection(nameof(ArtifactPathTests))]
public sealed class ArtifactPathTests : IClassFixture<ArtifactPathTests.Factory>
{
    private const string Secret = "outside-the-store-4b1f9e";

    private readonly Factory _factory;
    private readonly HttpClient _http;

    public ArtifactPathTests(Factory factory)
    {
        _factory = factory;
        factory.StartServer();
        _http = factory.RawClient();
        _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", RolesTests.ViewerToken);
    }

    public sealed class Factory : WebFactory
    {
        protected override IEnumerable<(string Key, string Value)> Settings() =>
        [
            ("Pipeline:Web:AccessToken", AccessTokenTests.Token),
            ("Pipeline:Web:Tokens:0:Name", "lab-viewer"), ("Pipeline:Web:Tokens:0:Token", RolesTests.ViewerToken), ("Pipeline:Web:Tokens:0:Role", "viewer"),
        ];

        private readonly SemaphoreSlim _once = new(1, 1);
        private (long RunId, JsonNode Artifact)? _finished;

        /// <summary>One finished probe run shared by the tests, and a file beside the artifact store that no route may serve.</summary>
        public async Task<(long RunId, JsonNode Artifact)> FinishedRunAsync(HttpClient http)
        {
            await _once.WaitAsync();
            try
            {
                if (_finished is { } done) return done;
                await File.WriteAllTextAsync(Path.Combine(DataFolder, "secret.txt"), Secret);
                var posted = await Operator(http, HttpMethod.Post, "/api/runs", JsonContent.Create(new { preset = "probe-dag" }));
                var id = (await posted.Content.ReadFromJsonAsync<JsonObject>())!["id"]!.GetValue<long>();
                var run = await UntilEndedAsync(async () => await (await Operator(http, HttpMethod.Get, $"/api/runs/{id}")).Content.ReadFromJsonAsync<JsonObject>());
                Assert.True(run["status"]!.GetValue<string>() == "succeeded", run.ToJsonString());
                _finished = (id, run["stages"]![0]!["artifacts"]![0]!);
                return _finished.Value;
            }
            finally
            {
                _once.Release();
            }
        }
    }

    private static Task<HttpResponseMessage> Operator(HttpClient http, HttpMethod method, string url, HttpContent? content = null)
    {
        var request = new HttpRequestMessage(method, url) { Content = content };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", AccessTokenTests.Token);
        return http.SendAsync(request);
    }

    /// <summary>The path exactly as written: HttpClient would otherwise remove dot segments before sending.</summary>
    private Task<HttpResponseMessage> Raw(string pathAndQuery) =>
        _http.GetAsync(new Uri(_factory.ClientOptions.BaseAddress + pathAndQuery.TrimStart('/'), new UriCreationOptions { DangerousDisablePathAndQueryCanonicalization = true }));

    [Fact]
    public async Task A_run_s_artifact_downloads_by_its_path_in_the_run_with_matching_sha256()
    {
        var (runId, artifact) = await _factory.FinishedRunAsync(_http);
        var path = artifact["path"]!.GetValue<string>();
        var relative = path[$"runs/{runId}/".Length..];

        var byRelative = await _http.GetAsync($"/api/runs/{runId}/artifacts/{relative}");
        var byFull = await _http.GetAsync($"/api/runs/{runId}/artifacts/{path}");

        Assert.Equal(HttpStatusCode.OK, byRelative.StatusCode);
        Assert.Equal(artifact["sha256"]!.GetValue<string>(), Convert.ToHexStringLower(SHA256.HashData(await byRelative.Content.ReadAsByteArrayAsync())));
        Assert.Equal(HttpStatusCode.OK, byFull.StatusCode);
    }

    [Theory]
    [InlineData("../secret.txt")]
    [InlineData("../../secret.txt")]
    [InlineData("..%2f..%2fsecret.txt")]
    [InlineData("%2e%2e%2f%2e%2e%2fsecret.txt")]
    [InlineData("%252e%252e%252fsecret.txt")]
    [InlineData("probe/..%2f..%2f..%2fsecret.txt")]
    [InlineData("..%5c..%5csecret.txt")]
    [InlineData("%2fetc%2fpasswd")]
    [InlineData("%2f%2fetc%2fpasswd")]
    [InlineData("C:%5cWindows%5cwin.ini")]
    [InlineData("./secret.txt")]
    public async Task Traversal_encoded_or_absolute_paths_are_refused_and_nothing_outside_the_store_is_read(string path)
    {
        var (runId, _) = await _factory.FinishedRunAsync(_http);

        var response = await Raw($"/api/runs/{runId}/artifacts/{path}");
        var body = await response.Content.ReadAsStringAsync();

        Assert.True(response.StatusCode is HttpStatusCode.BadRequest or HttpStatusCode.NotFound, $"{path}: {response.StatusCode} {body}");
        Assert.DoesNotContain(Secret, body, StringComparison.Ordinal);
        Assert.DoesNotContain("root:", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Another_run_s_artifact_is_not_found_through_this_run()
    {
        var (runId, artifact) = await _factory.FinishedRunAsync(_http);
        var posted = await Operator(_http, HttpMethod.Post, "/api/runs", JsonContent.Create(new { preset = "probe-dag", no_cache = true }));
        var other = (await posted.Content.ReadFromJsonAsync<JsonObject>())!["id"]!.GetValue<long>();
        var path = artifact["path"]!.GetValue<string>();

        var full = await _http.GetAsync($"/api/runs/{other}/artifacts/{path}");
        var relative = await _http.GetAsync($"/api/runs/{other}/artifacts/{path[$"runs/{runId}/".Length..]}");
        var climbing = await Raw($"/api/runs/{other}/artifacts/..%2f{runId}%2f{path[$"runs/{runId}/".Length..]}");

        Assert.Equal(HttpStatusCode.NotFound, full.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, relative.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, climbing.StatusCode);
    }

    [Fact]
    public async Task The_download_by_id_takes_only_a_number()
    {
        Assert.Equal(HttpStatusCode.NotFound, (await Raw("/api/artifacts/..%2f..%2fsecret.txt/download")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _http.GetAsync("/api/artifacts/999999/download")).StatusCode);
    }
}
