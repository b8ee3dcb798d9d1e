using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;

namespace Pipeline.Web.Tests;

/// <summary>The web host in embedded mode (SQLite, in-memory Hangfire, local artifacts) on a real loopback port.</summary>
public class WebFactory : WebApplicationFactory<Program>
{
    public string DataFolder { get; } = Path.Combine(Path.GetTempPath(), "pipeline-web-tests", Guid.NewGuid().ToString("N"));

    public WebFactory() => UseKestrel(0);

    /// <summary>Settings on top of the test defaults (a private data folder, fast heartbeats).</summary>
    protected virtual IEnumerable<(string Key, string Value)> Settings() => [];

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseSetting("Pipeline:DataFolder", DataFolder);
        builder.UseSetting("Pipeline:HeartbeatInterval", "00:00:00.500");
        builder.UseSetting("Pipeline:ReconcileInterval", "00:00:01");
        foreach (var (key, value) in Settings()) builder.UseSetting(key, value);
    }

    /// <summary>A client of the started server (<c>StartServer</c>) that shows redirects and sends no cookies unless a test sets them, as a script would.</summary>
    public HttpClient RawClient() =>
        new(new SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = false }) { BaseAddress = ClientOptions.BaseAddress };

    /// <summary>
    /// Reads a run until it has ended. Three minutes: CI runs the Jobs tests' training beside these, and a loaded
    /// machine once took more than 30 s for the probe DAG.
    /// </summary>
    public static async Task<JsonObject> UntilEndedAsync(Func<Task<JsonObject?>> read)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(3);
        JsonObject? run = null;
        while (DateTime.UtcNow < deadline && run?["status"]?.GetValue<string>() is not ("succeeded" or "failed" or "cancelled"))
        {
            await Task.Delay(200);
            run = await read();
        }

        return run!;
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (Directory.Exists(DataFolder)) Directory.Delete(DataFolder, recursive: true);
    }
}
