using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;

namespace Pipeline.Web.Tests;

/// <summary>
/// A second web host in this process: Hangfire keeps part of its configuration in static state, so it runs alone,
/// after <see cref="WebHostTests"/> and its host are done.
/// </summary>
[CollectionDefinition(nameof(RunSpecErrorsApiTests), DisableParallelization = true)]
public sealed class RunSpecErrorsApiCollection;

/// <summary>POST /api/runs answers a RunSpec the loader refuses with 400 and the errors under their fields, never 500.</summary>
[Collection(nameof(RunSpecErrorsApiTests))]
public sealed class RunSpecErrorsApiTests(WebHostTests.Factory factory) : IClassFixture<WebHostTests.Factory>
{
    private readonly HttpClient _http = factory.CreateClient();

    private async Task<(HttpStatusCode Status, JsonObject? Errors)> PostAsync(string body)
    {
        using var content = new StringContent(body, Encoding.UTF8, "application/json");
        var response = await _http.PostAsync("/api/runs", content);
        var problem = await response.Content.ReadFromJsonAsync<JsonObject>();
        return (response.StatusCode, problem?["errors"]?.AsObject());
    }

    [Fact]
    public async Task A_null_stage_is_a_bad_request_naming_the_stage()
    {
        var (status, errors) = await PostAsync("""{ "spec": { "name": "x", "stages": { "a": null } } }""");

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("must be an object; got null", errors!["stages.a"]![0]!.GetValue<string>());
    }

    [Fact]
    public async Task A_dependency_listed_twice_is_a_bad_request_naming_the_entry()
    {
        var (status, errors) = await PostAsync("""
            { "spec": { "name": "x", "stages": { "a": { "kind": "probe" }, "b": { "kind": "probe", "depends_on": ["a", "a"] } } } }
            """);

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("'a' is listed twice; list each dependency once", errors!["stages.b.depends_on[1]"]![0]!.GetValue<string>());
    }

    [Fact]
    public async Task A_mistyped_field_is_a_bad_request_in_json_terms()
    {
        var (status, errors) = await PostAsync("""{ "spec": { "name": "x", "stages": { "s": { "kind": "shard", "params": { "threads": "4" } } } } }""");

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("must be an integer; got the string '4'", errors!["stages.s.params.threads"]![0]!.GetValue<string>());
    }
}
