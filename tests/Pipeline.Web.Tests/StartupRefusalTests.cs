using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Pipeline.Web.Access;

namespace Pipeline.Web.Tests;

/// <summary>The real Pipeline.Web process: off loopback it starts only with an access token configured.</summary>
public sealed class StartupRefusalTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("pipeline-web-startup-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private Process Start(string urls, string? token = null, IDictionary<string, string>? environment = null)
    {
        var web = typeof(Program).Assembly.Location;
        var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = _folder, RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var arg in new[] { web, "--urls", urls }) psi.ArgumentList.Add(arg);
        foreach (var name in psi.Environment.Keys.Where(k => k.StartsWith("ASPNETCORE_", StringComparison.Ordinal) || k.StartsWith("Pipeline__", StringComparison.Ordinal)).ToList())
        {
            psi.Environment.Remove(name);
        }
        psi.Environment["Pipeline__DataFolder"] = Path.Combine(_folder, ".pipeline");
        psi.Environment["Pipeline__Web__RunWorker"] = "false";
        if (token is not null) psi.Environment["Pipeline__Web__AccessToken"] = token;
        foreach (var (key, value) in environment ?? new Dictionary<string, string>()) psi.Environment[key] = value;
        return Process.Start(psi)!;
    }

    /// <summary>Everything the host wrote (stderr, then stdout) once it has exited; at most a minute.</summary>
    private static async Task<string> OutputUntilExitAsync(Process process)
    {
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        return await stderr + await stdout;
    }

    [Fact]
    public async Task Bound_to_every_interface_without_a_token_the_host_exits_2_naming_the_setting_without_a_stack_trace()
    {
        using var process = Start("http://0.0.0.0:0");
        var output = await OutputUntilExitAsync(process);

        Assert.Equal(2, process.ExitCode);
        Assert.Contains("Refusing to start: the web host would listen on http://0.0.0.0:0, which other machines can reach", output, StringComparison.Ordinal);
        Assert.Contains("Pipeline:Web:AccessToken (environment variable Pipeline__Web__AccessToken)", output, StringComparison.Ordinal);
        Assert.Contains("openssl rand -hex 32", output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_bad_token_list_stops_the_host_with_exit_2_naming_each_field_and_not_showing_the_secrets()
    {
        const string Short = "too-short-secret";
        using var process = Start("http://0.0.0.0:0", environment: new Dictionary<string, string>
        {
            ["Pipeline__Web__Tokens__0__Name"] = "lab",
            ["Pipeline__Web__Tokens__0__Token"] = Short,
            ["Pipeline__Web__Tokens__0__Role"] = "admin",
        });
        var output = await OutputUntilExitAsync(process);

        Assert.Equal(2, process.ExitCode);
        Assert.Contains("Pipeline:Web:Tokens:0:Token must be at least 32 characters", output, StringComparison.Ordinal);
        Assert.Contains("Pipeline:Web:Tokens:0:Role must be 'viewer' or 'operator'; got 'admin'.", output, StringComparison.Ordinal);
        Assert.DoesNotContain(Short, output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bound_to_every_interface_with_a_token_the_host_serves_and_requires_it()
    {
        int port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }
        using var process = Start($"http://0.0.0.0:{port}", AccessTokenTests.Token);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            HttpResponseMessage? health = null;
            for (var i = 0; i < 120 && health is null && !process.HasExited; i++)
            {
                try
                {
                    health = await http.GetAsync("/healthz");
                }
                catch (HttpRequestException)
                {
                    await Task.Delay(250);
                }
            }

            Assert.Equal(HttpStatusCode.OK, health?.StatusCode);
            Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync("/api/runs")).StatusCode);
            using var page = new HttpRequestMessage(HttpMethod.Get, "/hangfire");
            page.Headers.Accept.ParseAdd("text/html");
            using var browser = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false }) { BaseAddress = http.BaseAddress };
            var redirect = await browser.SendAsync(page);
            Assert.Equal(HttpStatusCode.Redirect, redirect.StatusCode);
            Assert.Equal("/signin?returnUrl=%2Fhangfire", redirect.Headers.Location!.OriginalString);
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
    }

    [Theory]
    [InlineData("http://127.0.0.1:5080", true)]
    [InlineData("http://127.1.2.3:5080", true)]
    [InlineData("http://localhost:5080", true)]
    [InlineData("https://[::1]:5443", true)]
    [InlineData("http://unix:/run/pipeline.sock", true)]
    [InlineData("http://0.0.0.0:5080", false)]
    [InlineData("http://[::]:5080", false)]
    [InlineData("http://*:5080", false)]
    [InlineData("http://+:5080", false)]
    [InlineData("http://pipeline.example:5080", false)]
    [InlineData("http://10.0.0.4:5080", false)]
    [InlineData("not a url", false)]
    public void Only_loopback_addresses_and_unix_sockets_count_as_loopback(string url, bool loopback) =>
        Assert.Equal(loopback, ListenAddresses.IsLoopback(url));
}
