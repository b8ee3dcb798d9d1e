using Microsoft.Playwright;

namespace Pipeline.Web.Harness;

/// <summary>
/// Debian's Chromium, headless, launched by Playwright (its bundled node driver; nothing is downloaded, `playwright
/// install` is never run). The flags keep Chromium off the network and out of the sandbox it cannot create as root.
/// </summary>
public static class HeadlessChromium
{
    public static string ExecutablePath => Environment.GetEnvironmentVariable("PIPELINE_TEST_CHROMIUM") is { Length: > 0 } path ? path : "/usr/bin/chromium";

    public static Task<IBrowser> LaunchAsync(IPlaywright playwright)
    {
        if (!File.Exists(ExecutablePath))
        {
            throw new FileNotFoundException($"No Chromium at {ExecutablePath}: `apt-get install chromium` (./scripts/test.sh and bench/web.sh install it) or set PIPELINE_TEST_CHROMIUM.");
        }
        return playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ExecutablePath,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        });
    }
}
