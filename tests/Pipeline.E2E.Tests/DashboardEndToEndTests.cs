using System.Security.Cryptography;
using Microsoft.Playwright;

using static Pipeline.E2E.Tests.DashboardPages;

namespace Pipeline.E2E.Tests;

/// <summary>
/// The dashboard's pages as the lab uses them, in Chromium against the real host process (listening on every
/// interface, so signed in as the operator or viewer of <see cref="OpenHostFixture"/>), with PostgreSQL, Azurite and
/// the host's embedded worker running the stages.
/// </summary>
public sealed class DashboardEndToEndTests(OpenHostFixture fixture, ITestOutputHelper output) : IClassFixture<OpenHostFixture>
{
    private Task Run(string test, Func<IBrowserContext, IPage, Task> body) => EndToEnd.RunAsync(fixture.Browser, fixture.Host, output, test, body);

    [Fact]
    public Task A_downloaded_artifact_has_the_sha256_the_run_page_shows() =>
        Run(nameof(A_downloaded_artifact_has_the_sha256_the_run_page_shows), async (context, page) =>
        {
            await SignInAsync(page, OpenHostFixture.Operator, "/runs");
            var run = await LaunchAndWaitAsync(context, "probe-dag");

            await page.GotoAsync($"/runs/{run}");
            await Interactive(page);
            var row = page.GetByTestId("artifact-row").First;
            await Assertions.Expect(row).ToBeVisibleAsync();
            var shown = await row.Locator("td[title]").GetAttributeAsync("title");
            var download = await page.RunAndWaitForDownloadAsync(() => row.GetByTestId("artifact-link").ClickAsync());
            var file = await download.PathAsync();

            Assert.Matches("^[0-9a-f]{64}$", shown!);
            Assert.Equal(shown, Convert.ToHexStringLower(SHA256.HashData(await File.ReadAllBytesAsync(file))));
        });

    [Fact]
    public Task A_schedule_added_on_the_schedules_page_and_triggered_now_launches_its_run() =>
        Run(nameof(A_schedule_added_on_the_schedules_page_and_triggered_now_launches_its_run), async (_, page) =>
        {
            await SignInAsync(page, OpenHostFixture.Operator, "/schedules");
            await Field(page, "schedule-name").FillAsync("e2e-nightly-probe");
            await Field(page, "schedule-cron").FillAsync("30 2 * * *");
            await Field(page, "schedule-zone").FillAsync("Europe/Berlin");
            await page.GetByTestId("schedule-preset").ClickAsync();
            await page.GetByRole(AriaRole.Option, new() { Name = "probe-dag", Exact = true }).ClickAsync();
            await page.GetByTestId("schedule-save").ClickAsync();

            var row = page.Locator("[data-testid=schedule-row][data-schedule=e2e-nightly-probe]");
            await Assertions.Expect(row).ToBeVisibleAsync();
            await Assertions.Expect(row.GetByTestId("next-in-zone")).ToContainTextAsync("02:30");
            await row.GetByTestId("schedule-trigger").ClickAsync();

            await page.WaitForURLAsync(RunUrl());
            await Interactive(page);
            await Assertions.Expect(page.GetByTestId("run-title")).ToContainTextAsync("probe-dag");
            await Assertions.Expect(page.Locator("[data-testid=stage-node][data-stage=join]"))
                .ToHaveAttributeAsync("data-status", Done(), new() { Timeout = 120_000 });
        });

    [Fact]
    public Task A_viewer_previews_on_the_launch_page_but_has_no_launch_button_and_no_schedule_controls() =>
        Run(nameof(A_viewer_previews_on_the_launch_page_but_has_no_launch_button_and_no_schedule_controls), async (context, page) =>
        {
            await SignInAsync(page, OpenHostFixture.Viewer, "/launch");
            await page.GetByTestId("preview-button").ClickAsync();
            await Assertions.Expect(page.GetByTestId("preview-stage").First).ToBeVisibleAsync();
            await Assertions.Expect(page.GetByTestId("launch-not-allowed")).ToBeVisibleAsync();
            await Assertions.Expect(page.GetByTestId("launch-button")).ToHaveCountAsync(0);

            await page.GotoAsync("/schedules");
            await Interactive(page);
            await Assertions.Expect(page.GetByTestId("schedule-form")).ToHaveCountAsync(0);
            var launch = await context.APIRequest.PostAsync("/api/runs", new() { DataObject = new { preset = "probe-dag" } });
            Assert.Equal(403, launch.Status);
        });

    [Fact]
    public Task The_runs_page_lists_a_finished_run_with_its_status_and_links_to_it() =>
        Run(nameof(The_runs_page_lists_a_finished_run_with_its_status_and_links_to_it), async (context, page) =>
        {
            await SignInAsync(page, OpenHostFixture.Operator, "/runs");
            var run = await LaunchAndWaitAsync(context, "probe-dag");

            await page.ReloadAsync();
            await Interactive(page);
            var link = page.Locator($"[data-testid=run-row][data-run-id='{run}']");
            await Assertions.Expect(link).ToBeVisibleAsync();
            await link.ClickAsync();
            await page.WaitForURLAsync($"**/runs/{run}");
            await Assertions.Expect(page.GetByTestId("stage-node")).ToHaveCountAsync(4);
        });

}

/// <summary>
/// The smoke preset end to end in the browser, on a host of its own: its training keeps that host's worker busy for
/// minutes, and the other dashboard tests (in their own class, run in parallel) must not queue behind it.
/// </summary>
public sealed class SmokeEndToEndTests(OpenHostFixture fixture, ITestOutputHelper output) : IClassFixture<OpenHostFixture>
{
    // Generous: on 2 cores shared with the other test assemblies the smoke takes 4-10 minutes.
    private static readonly TimeSpan SmokeTimeout = TimeSpan.FromMinutes(20);

    private Task Run(string test, Func<IBrowserContext, IPage, Task> body) => EndToEnd.RunAsync(fixture.Browser, fixture.Host, output, test, body);

    [Fact]
    public Task The_smoke_preset_launched_from_the_launch_page_turns_every_stage_green_while_its_chart_gains_points() =>
        Run(nameof(The_smoke_preset_launched_from_the_launch_page_turns_every_stage_green_while_its_chart_gains_points), async (_, page) =>
        {
            await SignInAsync(page, OpenHostFixture.Operator, "/launch");
            await Assertions.Expect(page.GetByTestId("preset-description")).ToContainTextAsync("synthetic shards");

            await page.GetByTestId("preview-button").ClickAsync();
            var planned = page.GetByTestId("preview-stage");
            await Assertions.Expect(planned.First).ToBeVisibleAsync();
            var stages = await planned.EvaluateAllAsync<string[]>("rows => rows.map(r => r.dataset.stage)");
            Assert.Contains("basenet", stages);
            Assert.Contains("rgc", stages);

            await page.GetByTestId("launch-button").ClickAsync();
            await page.WaitForURLAsync(RunUrl());
            var run = RunUrl().Match(page.Url).Groups["id"].Value;
            await Interactive(page);
            await Assertions.Expect(page.GetByTestId("stage-node")).ToHaveCountAsync(stages.Length);

            // The rgc stage trains for about a minute and reports every 2 s: its loss chart must grow on this page,
            // pushed through the circuit, without a reload.
            var rgc = page.Locator("[data-testid=stage-node][data-stage=rgc]");
            await Assertions.Expect(rgc).ToHaveAttributeAsync("data-status", "running", new() { Timeout = (float)SmokeTimeout.TotalMilliseconds });
            await rgc.ClickAsync();
            var chart = page.Locator("[data-testid=stage-panel][data-stage=rgc] [data-testid=metric-chart]").First;
            // The first points arrive after the first batches (metrics every 2 s).
            await Assertions.Expect(chart).ToBeVisibleAsync(new() { Timeout = 120_000 });
            var first = await PointsAsync(chart);
            var grew = await UntilAsync(async () => await PointsAsync(chart) > first, TimeSpan.FromMinutes(3));
            Assert.True(grew, $"the rgc chart stayed at {first} points while the stage ran");
            await Assertions.Expect(page.Locator("[data-testid=stage-panel][data-stage=rgc] [data-testid=log-line]").First).ToBeVisibleAsync();

            foreach (var stage in stages)
            {
                await Assertions.Expect(page.Locator($"[data-testid=stage-node][data-stage={stage}]"))
                    .ToHaveAttributeAsync("data-status", Done(), new() { Timeout = (float)SmokeTimeout.TotalMilliseconds });
            }
            await page.Locator("[data-testid=stage-node][data-stage=rgc-neural]").ClickAsync();
            await Assertions.Expect(page.Locator("[data-testid=stage-panel][data-stage=rgc-neural] [data-testid=stage-image]").First).ToBeVisibleAsync();
            await page.ScreenshotAsync(new() { Path = Path.Combine(EndToEnd.ScreenshotFolder, "run-page.png"), FullPage = true });

            // Compare: the run's models beside the paper's, its sweep over time, and its neural fit's layer × area map,
            // whose best layers (conv3 for V4, conv5 for IT: the virtual monkey's generating layers) match the paper's shallow mapping.
            await page.GotoAsync($"/compare?runs={run}");
            await Interactive(page);
            foreach (var figure in new[] { "accuracy-vs-parameters", "accuracy-over-time", "accuracy-vs-unroll", "predictivity-over-time", $"layer-area-{run}-rgc-neural" })
            {
                var compared = page.Locator($"[data-testid=compare-figure][data-figure={figure}]");
                await Assertions.Expect(compared).ToBeVisibleAsync();
                Assert.True(await PointsAsync(compared) >= 2, $"{figure} has fewer than 2 points");
                await Assertions.Expect(compared.Locator(".main-svg").First).ToBeVisibleAsync();
            }
            await Assertions.Expect(page.Locator("[data-testid=best-layer-row][data-area=V4]")).ToHaveAttributeAsync("data-layer", "conv3");
            await Assertions.Expect(page.Locator("[data-testid=best-layer-row][data-area=V4]")).ToHaveAttributeAsync("data-as-in-paper", "true");
            await Assertions.Expect(page.Locator("[data-testid=best-layer-row][data-area=IT]")).ToHaveAttributeAsync("data-layer", "conv5");
            await page.ScreenshotAsync(new() { Path = Path.Combine(EndToEnd.ScreenshotFolder, "compare-page.png"), FullPage = true });

            await page.GotoAsync("/runs");
            await Assertions.Expect(page.Locator($"[data-testid=run-row][data-run-id='{run}']")).ToBeVisibleAsync();
        });
}
