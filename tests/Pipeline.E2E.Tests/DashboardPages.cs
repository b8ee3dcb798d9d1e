using System.Text.RegularExpressions;
using Microsoft.Playwright;

namespace Pipeline.E2E.Tests;

/// <summary>What the dashboard tests do on its pages: sign in, wait for the circuit, read charts, launch and wait.</summary>
public static partial class DashboardPages
{
    public static async Task SignInAsync(IPage page, TestToken who, string returnUrl)
    {
        await page.GotoAsync($"/signin?returnUrl={Uri.EscapeDataString(returnUrl)}");
        await EndToEnd.SignInAsync(page, who.Token);
        await page.WaitForURLAsync("**" + returnUrl);
        await Interactive(page);
    }

    /// <summary>Pages are prerendered; a click before the circuit takes over is lost, so wait for it (MainLayout's marker).</summary>
    public static Task Interactive(IPage page) =>
        Assertions.Expect(page.Locator("[data-testid=nav][data-interactive=true]")).ToHaveCountAsync(1);

    public static ILocator Field(IPage page, string testId) =>
        page.Locator($"[data-testid={testId}] input, [data-testid={testId}] textarea, input[data-testid={testId}], textarea[data-testid={testId}]").First;

    public static async Task<int> PointsAsync(ILocator chart) => int.Parse(await chart.GetAttributeAsync("data-points") ?? "0", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Launches a preset through the API with the page's session (the same cookie) and waits until it succeeded.</summary>
    public static async Task<long> LaunchAndWaitAsync(IBrowserContext context, string preset)
    {
        var created = await context.APIRequest.PostAsync("/api/runs", new() { DataObject = new { preset } });
        Assert.Equal(201, created.Status);
        var id = (await created.JsonAsync())!.Value.GetProperty("id").GetInt64();
        string? status = null;
        var done = await UntilAsync(async () =>
        {
            var run = await (await context.APIRequest.GetAsync($"/api/runs/{id}")).JsonAsync();
            status = run!.Value.GetProperty("status").GetString();
            return status is "succeeded" or "failed" or "cancelled";
        }, TimeSpan.FromMinutes(2));
        Assert.True(done && status == "succeeded", $"run {id} ({preset}) ended {status ?? "nowhere"}");
        return id;
    }

    public static async Task<bool> UntilAsync(Func<Task<bool>> condition, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (await condition()) return true;
            await Task.Delay(500);
        }
        return await condition();
    }

    /// <summary>A stage that ended well: ran, or reused an earlier run's outputs.</summary>
    [GeneratedRegex("^(succeeded|cached)$")]
    public static partial Regex Done();

    [GeneratedRegex(@"/runs/(?<id>\d+)$")]
    public static partial Regex RunUrl();
}
