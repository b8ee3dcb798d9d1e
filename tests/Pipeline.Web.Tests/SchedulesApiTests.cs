using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;

namespace Pipeline.Web.Tests;

/// <summary>The dashboard's schedules API on the embedded host: 201 on add, 400 naming the field, 409 for a taken name, 404 for an unknown one.</summary>
public sealed class SchedulesApiTests(WebHostTests.Factory factory) : IClassFixture<WebHostTests.Factory>
{
    private readonly HttpClient _http = factory.CreateClient();

    [Fact]
    public async Task A_schedule_is_added_listed_with_its_next_firing_triggered_into_a_linked_run_disabled_and_deleted()
    {
        var body = new { name = "api-nightly", cron = "0 2 * * *", time_zone = "Europe/Berlin", preset = "probe-dag", set = new[] { "stages.join.params.note=api" } };
        var added = await _http.PostAsJsonAsync("/api/schedules", body);
        Assert.Equal(HttpStatusCode.Created, added.StatusCode);
        var duplicate = await _http.PostAsJsonAsync("/api/schedules", body);
        Assert.Equal(HttpStatusCode.Conflict, duplicate.StatusCode);
        Assert.Contains("Schedule 'api-nightly' already exists", await duplicate.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        var listed = (await _http.GetFromJsonAsync<JsonArray>("/api/schedules"))!.Single(s => s!["name"]!.GetValue<string>() == "api-nightly")!;
        Assert.Equal(("Europe/Berlin", "once", true), (listed["time_zone"]!.GetValue<string>(), listed["misfire"]!.GetValue<string>(), listed["enabled"]!.GetValue<bool>()));
        var next = listed["next_firing"]!.GetValue<DateTime>().ToUniversalTime();
        Assert.InRange(next, DateTime.UtcNow, DateTime.UtcNow.AddHours(25));
        Assert.Equal(0, TimeZoneInfo.ConvertTimeFromUtc(next, TimeZoneInfo.FindSystemTimeZoneById("Europe/Berlin")).Minute);

        var triggered = await _http.PostAsync("/api/schedules/api-nightly/trigger", null);
        Assert.Equal(HttpStatusCode.Created, triggered.StatusCode);
        var runId = (await triggered.Content.ReadFromJsonAsync<JsonObject>())!["id"]!.GetValue<long>();
        var run = await _http.GetFromJsonAsync<JsonObject>($"/api/runs/{runId}");
        Assert.Equal(["stages.join.params.note=api"], run!["overrides"]!.AsArray().Select(o => o!.GetValue<string>()));

        var disabled = await _http.PostAsync("/api/schedules/api-nightly/disable", null);
        Assert.Equal(HttpStatusCode.OK, disabled.StatusCode);
        var shown = await disabled.Content.ReadFromJsonAsync<JsonObject>();
        Assert.Equal((false, runId), (shown!["enabled"]!.GetValue<bool>(), shown["last_run_id"]!.GetValue<long>()));
        Assert.Null(shown["next_firing"]);

        Assert.Equal(HttpStatusCode.NoContent, (await _http.DeleteAsync("/api/schedules/api-nightly")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _http.DeleteAsync("/api/schedules/api-nightly")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _http.PostAsync("/api/schedules/api-nightly/enable", null)).StatusCode);
    }

    [Fact]
    public async Task An_invalid_schedule_is_answered_400_naming_each_field()
    {
        var refused = await _http.PostAsJsonAsync("/api/schedules", new { name = "bad", cron = "0 2 * *", time_zone = "Nowhere/City", spec = new { name = "x", stages = new { a = new { kind = "nope" } } } });

        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        var errors = (await refused.Content.ReadFromJsonAsync<JsonObject>())!["errors"]!.AsObject();
        Assert.Contains("has 4 fields", errors["cron"]![0]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Contains("'Nowhere/City' is not a known time zone", errors["time_zone"]![0]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.True(errors.ContainsKey("stages.a.kind"), errors.ToJsonString());
        Assert.DoesNotContain((await _http.GetFromJsonAsync<JsonArray>("/api/schedules"))!, s => s!["name"]!.GetValue<string>() == "bad");
    }
}
