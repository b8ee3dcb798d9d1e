using System.Text.RegularExpressions;
using Microsoft.Playwright;

namespace Pipeline.E2E.Tests;

/// <summary>A host listening on every interface with a viewer and an operator token (the deployment shape), and a browser.</summary>
public sealed class OpenHostFixture : IAsyncLifetime
{
    public static readonly TestToken Viewer = new("lab-viewer", "e2e-viewer-6b1d0c9f3a2e4d5b8c7a6f5e4d3c2b1a0f9e8d7c", "viewer");
    public static readonly TestToken Operator = new("lab-operator", "e2e-operator-1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b", "operator");

    public WebHostProcess Host { get; private set; } = null!;

    public Browser Browser { get; } = new();

    public async Task InitializeAsync()
    {
        Host = await WebHostProcess.StartAsync([Viewer, Operator], everyInterface: true);
        await Browser.InitializeAsync();
    }

    public async Task DisposeAsync()
    {
        await Browser.DisposeAsync();
        if (Host is not null) await Host.DisposeAsync();
    }
}

/// <summary>Sign-in, roles and refusals as a browser meets them, on the real host process with PostgreSQL and Azurite.</summary>
public sealed partial class AccessEndToEndTests(OpenHostFixture fixture, ITestOutputHelper output) : IClassFixture<OpenHostFixture>
{
    private Task Run(string test, Func<IBrowserContext, IPage, Task> body) => EndToEnd.RunAsync(fixture.Browser, fixture.Host, output, test, body);

    [Fact]
    public Task Off_loopback_an_anonymous_browser_is_sent_to_sign_in_and_the_api_answers_401() =>
        Run(nameof(Off_loopback_an_anonymous_browser_is_sent_to_sign_in_and_the_api_answers_401), async (context, page) =>
        {
            await page.GotoAsync("/hangfire");

            Assert.Matches(SignInUrl(), page.Url);
            await Assertions.Expect(page.GetByLabel("Access token")).ToBeVisibleAsync();
            var api = await context.APIRequest.GetAsync("/api/runs");
            Assert.Equal(401, api.Status);
            Assert.Contains("Bearer", api.Headers["www-authenticate"], StringComparison.Ordinal);
        });

    [Fact]
    public Task An_operator_signs_in_in_the_browser_and_reaches_the_hangfire_dashboard() =>
        Run(nameof(An_operator_signs_in_in_the_browser_and_reaches_the_hangfire_dashboard), async (context, page) =>
        {
            await page.GotoAsync("/hangfire");
            await EndToEnd.SignInAsync(page, OpenHostFixture.Operator.Token);

            await page.WaitForURLAsync("**/hangfire");
            await Assertions.Expect(page).ToHaveTitleAsync(new Regex("ConvRNN Pipeline jobs"));
            await Assertions.Expect(page.GetByText("Realtime graph").Or(page.GetByText("Succeeded")).First).ToBeVisibleAsync();
            var cookies = await context.CookiesAsync();
            var session = Assert.Single(cookies, c => c.Name == "pipeline_session");
            Assert.True(session.HttpOnly);
            Assert.Equal(SameSiteAttribute.Lax, session.SameSite);
            Assert.DoesNotContain(OpenHostFixture.Operator.Token, session.Value, StringComparison.Ordinal);
            Assert.Equal(201, (await context.APIRequest.PostAsync("/api/schedules", new() { DataObject = new { name = "e2e-nightly", cron = "0 2 * * *", preset = "probe-dag" } })).Status);
        });

    [Fact]
    public Task A_signed_in_viewer_gets_403_from_hangfire_and_from_launching_a_run_but_reads_runs() =>
        Run(nameof(A_signed_in_viewer_gets_403_from_hangfire_and_from_launching_a_run_but_reads_runs), async (context, page) =>
        {
            await page.GotoAsync("/signin?returnUrl=%2Fapi%2Fruns");
            await EndToEnd.SignInAsync(page, OpenHostFixture.Viewer.Token);
            await page.WaitForURLAsync("**/api/runs");

            var hangfire = await page.GotoAsync("/hangfire");
            var launch = await context.APIRequest.PostAsync("/api/runs", new() { DataObject = new { preset = "probe-dag" } });
            var runs = await context.APIRequest.GetAsync("/api/runs");

            Assert.Equal(403, hangfire!.Status);
            Assert.Equal(403, launch.Status);
            Assert.Equal(200, runs.Status);
        });

    [Fact]
    public Task A_wrong_token_shows_an_error_without_the_token() =>
        Run(nameof(A_wrong_token_shows_an_error_without_the_token), async (_, page) =>
        {
            const string Guess = "e2e-guess-9f8e7d6c5b4a39281706f5e4d3c2b1a0";
            await page.GotoAsync("/hangfire");
            await EndToEnd.SignInAsync(page, Guess);

            await Assertions.Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("That is not a token configured on this server");
            Assert.DoesNotContain(Guess, await page.ContentAsync(), StringComparison.Ordinal);
            Assert.EndsWith("/signin", page.Url, StringComparison.Ordinal);
            await Assertions.Expect(page.Locator("input[name=returnUrl]")).ToHaveValueAsync("/hangfire");
        });

    [Fact]
    public Task A_path_traversal_download_is_refused() =>
        Run(nameof(A_path_traversal_download_is_refused), async (context, page) =>
        {
            await page.GotoAsync("/signin?returnUrl=%2Fapi%2Fruns");
            await EndToEnd.SignInAsync(page, OpenHostFixture.Viewer.Token);
            await page.WaitForURLAsync("**/api/runs");

            var encoded = await page.GotoAsync("/api/runs/1/artifacts/%2e%2e%2f%2e%2e%2f.pipeline%2fpipeline.db");
            var body = await page.ContentAsync();
            var backslash = await context.APIRequest.GetAsync("/api/runs/1/artifacts/..%5c..%5cappsettings.json");
            var absolute = await context.APIRequest.GetAsync("/api/runs/1/artifacts/%2fetc%2fpasswd");
            var missingRun = await context.APIRequest.GetAsync("/api/runs/999999/artifacts/probe-0000/out.json");

            Assert.Equal(400, encoded!.Status);
            Assert.DoesNotContain("SQLite", body, StringComparison.Ordinal);
            Assert.Equal(400, backslash.Status);
            Assert.Equal(400, absolute.Status);
            Assert.DoesNotContain("root:", await absolute.TextAsync(), StringComparison.Ordinal);
            Assert.Equal(404, missingRun.Status);
        });

    [GeneratedRegex(@"/signin\?returnUrl=%2Fhangfire$")]
    private static partial Regex SignInUrl();
}

/// <summary>A host on loopback without tokens (the laptop shape): everything is open to this machine, as before sign-in existed.</summary>
public sealed class LoopbackHostFixture : IAsyncLifetime
{
    public WebHostProcess Host { get; private set; } = null!;

    public Browser Browser { get; } = new();

    public async Task InitializeAsync()
    {
        Host = await WebHostProcess.StartAsync([]);
        await Browser.InitializeAsync();
    }

    public async Task DisposeAsync()
    {
        await Browser.DisposeAsync();
        if (Host is not null) await Host.DisposeAsync();
    }
}

public sealed class LoopbackEndToEndTests(LoopbackHostFixture fixture, ITestOutputHelper output) : IClassFixture<LoopbackHostFixture>
{
    [Fact]
    public Task On_loopback_without_tokens_the_hangfire_dashboard_opens_without_sign_in() =>
        EndToEnd.RunAsync(fixture.Browser, fixture.Host, output, nameof(On_loopback_without_tokens_the_hangfire_dashboard_opens_without_sign_in), async (_, page) =>
        {
            var response = await page.GotoAsync("/hangfire");

            Assert.Equal(200, response!.Status);
            await Assertions.Expect(page).ToHaveTitleAsync(new Regex("ConvRNN Pipeline jobs"));
        });
}
