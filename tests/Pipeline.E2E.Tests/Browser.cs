using Microsoft.Playwright;

namespace Pipeline.E2E.Tests;

/// <summary>Headless Debian Chromium for one test class (<see cref="HeadlessChromium"/>).</summary>
public sealed class Browser : IAsyncLifetime
{
    private IPlaywright? _playwright;

    public IBrowser Chromium { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        _playwright = await Playwright.CreateAsync();
        Chromium = await HeadlessChromium.LaunchAsync(_playwright);
    }

    public async Task DisposeAsync()
    {
        if (Chromium is not null) await Chromium.DisposeAsync();
        _playwright?.Dispose();
    }
}

/// <summary>
/// One end-to-end test's run: a fresh browser context on the host, a screenshot at the end (pass or fail) under
/// TestResults/screenshots/ in the test output, and the host's stdout/stderr in the test output when it fails.
/// </summary>
public static class EndToEnd
{
    public static string ScreenshotFolder => Path.Combine(AppContext.BaseDirectory, "TestResults", "screenshots");

    public static async Task RunAsync(Browser browser, WebHostProcess host, ITestOutputHelper output, string test, Func<IBrowserContext, IPage, Task> body)
    {
        await using var context = await browser.Chromium.NewContextAsync(new BrowserNewContextOptions { BaseURL = host.BaseAddress.ToString() });
        // Generous: CI runs the other test assemblies on the same 2 cores.
        context.SetDefaultTimeout(30_000);
        Assertions.SetDefaultExpectTimeout(30_000);
        var page = await context.NewPageAsync();
        try
        {
            await body(context, page);
        }
        catch
        {
            output.WriteLine($"--- web host output ({host.BaseAddress}) ---\n{host.Log}");
            throw;
        }
        finally
        {
            var path = Path.Combine(ScreenshotFolder, test + ".png");
            try
            {
                await page.ScreenshotAsync(new PageScreenshotOptions { Path = path, FullPage = true });
                output.WriteLine($"screenshot: {path}");
            }
            catch (PlaywrightException e)
            {
                output.WriteLine($"no screenshot ({e.Message})");
            }
        }
    }

    /// <summary>The sign-in form, filled and sent as a person would.</summary>
    public static async Task SignInAsync(IPage page, string token)
    {
        await page.GetByLabel("Access token").FillAsync(token);
        // Wait for the form's POST to be answered, so that the next navigation does not interrupt it.
        await page.RunAndWaitForResponseAsync(() => page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync(),
            r => r.Request.Method == "POST" && new Uri(r.Url).AbsolutePath == "/signin");
        await page.WaitForLoadStateAsync();
    }
}
