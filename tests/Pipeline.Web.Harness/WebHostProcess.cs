using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using Npgsql;

namespace Pipeline.Web.Harness;

/// <summary>A token the host is started with (Pipeline:Web:Tokens:i).</summary>
public sealed record TestToken(string Name, string Token, string Role);

/// <summary>
/// The real web host as a separate process — `dotnet Pipeline.Web.dll` from the Web project's own build output —
/// on a free port, against the PostgreSQL and Azurite that ./scripts/test.sh (or bench/web.sh) started (a fresh
/// database and blob container per host, the database dropped on dispose), with its data folder in a temporary
/// directory. Why the Web project's bin rather than a copy in this project's output: there the host has its own
/// deps.json, runtimeconfig.json and static web assets manifest (the dashboard's CSS and scripts), exactly as
/// `dotnet run --project src/Web` serves them; a copy beside the caller's assembly would run with the caller's
/// dependency graph. PIPELINE_E2E_WEB_DLL overrides the path (a published host).
/// </summary>
public sealed class WebHostProcess : IAsyncDisposable
{
    private readonly ConcurrentQueue<string> _log = new();
    private readonly Process _process;
    private readonly string _database;
    private readonly string _server;

    private WebHostProcess(Process process, string database, string server, string folder, Uri baseAddress)
    {
        _process = process;
        _database = database;
        _server = server;
        DataFolder = folder;
        BaseAddress = baseAddress;
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) _log.Enqueue(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) _log.Enqueue("stderr: " + e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    /// <summary>Where a browser on this machine reaches the host (always 127.0.0.1, also when it listens on every interface).</summary>
    public Uri BaseAddress { get; }

    public string DataFolder { get; }

    /// <summary>The host process's id (a benchmark reads its CPU time from /proc).</summary>
    public int ProcessId => _process.Id;

    /// <summary>Everything the host wrote to stdout and stderr so far.</summary>
    public string Log => string.Join('\n', _log);

    public static string WebDll =>
        Environment.GetEnvironmentVariable("PIPELINE_E2E_WEB_DLL") is { Length: > 0 } dll
            ? dll
            : typeof(WebHostProcess).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "PipelineWebDll").Value!;

    /// <param name="everyInterface">Listen on http://0.0.0.0:PORT (reachable from other machines, so the host requires sign-in) instead of 127.0.0.1.</param>
    /// <param name="settings">Environment variables set last (they override the defaults here, e.g. Pipeline__HeartbeatInterval).</param>
    /// <param name="databasePrefix">What the fresh database's name starts with (the rest is a GUID).</param>
    public static async Task<WebHostProcess> StartAsync(IReadOnlyList<TestToken> tokens, bool everyInterface = false, IDictionary<string, string>? settings = null,
        string databasePrefix = "e2e")
    {
        if (!File.Exists(WebDll)) throw new FileNotFoundException($"The web host is not built at {WebDll}: run `dotnet build Pipeline.sln` (or set PIPELINE_E2E_WEB_DLL).");
        var server = Require("PIPELINE_TEST_POSTGRES", "PostgreSQL");
        var blobs = Require("PIPELINE_TEST_BLOBS", "Azurite (blob service)");
        var database = $"{databasePrefix}_{Guid.NewGuid():N}";
        await using (var admin = new NpgsqlConnection(server))
        {
            await admin.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE {database}", admin);
            await create.ExecuteNonQueryAsync();
        }
        var folder = Directory.CreateTempSubdirectory($"pipeline-{databasePrefix}-").FullName;
        var port = FreePort();
        var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = folder, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { WebDll, "--urls", $"http://{(everyInterface ? "0.0.0.0" : "127.0.0.1")}:{port}" }) psi.ArgumentList.Add(arg);
        foreach (var name in psi.Environment.Keys.Where(k => k.StartsWith("ASPNETCORE_", StringComparison.Ordinal) || k.StartsWith("Pipeline__", StringComparison.Ordinal)
                     || k.StartsWith("ConnectionStrings__", StringComparison.Ordinal) || k == "DOTNET_URLS").ToList())
        {
            psi.Environment.Remove(name);
        }
        // Development: the build output's static web assets are served from the manifest only in that environment.
        psi.Environment["ASPNETCORE_ENVIRONMENT"] = "Development";
        psi.Environment["ConnectionStrings__Postgres"] = new NpgsqlConnectionStringBuilder(server) { Database = database }.ConnectionString;
        psi.Environment["ConnectionStrings__Blobs"] = blobs;
        psi.Environment["Pipeline__BlobContainer"] = database.Replace('_', '-');
        psi.Environment["Pipeline__DataFolder"] = Path.Combine(folder, ".pipeline");
        psi.Environment["Pipeline__HeartbeatInterval"] = "00:00:00.500";
        psi.Environment["Pipeline__ReconcileInterval"] = "00:00:01";
        for (var i = 0; i < tokens.Count; i++)
        {
            psi.Environment[$"Pipeline__Web__Tokens__{i}__Name"] = tokens[i].Name;
            psi.Environment[$"Pipeline__Web__Tokens__{i}__Token"] = tokens[i].Token;
            psi.Environment[$"Pipeline__Web__Tokens__{i}__Role"] = tokens[i].Role;
        }
        foreach (var (key, value) in settings ?? new Dictionary<string, string>()) psi.Environment[key] = value;

        var host = new WebHostProcess(Process.Start(psi)!, database, server, folder, new Uri($"http://127.0.0.1:{port}/"));
        try
        {
            await host.UntilHealthyAsync(TimeSpan.FromSeconds(90));
        }
        catch
        {
            await host.DisposeAsync();
            throw;
        }
        return host;
    }

    private async Task UntilHealthyAsync(TimeSpan timeout)
    {
        using var http = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(5) };
        var deadline = DateTime.UtcNow + timeout;
        HttpStatusCode? last = null;
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited) throw new InvalidOperationException($"The web host exited with code {_process.ExitCode} before /healthz answered:\n{Log}");
            try
            {
                var response = await http.GetAsync("/healthz");
                if (response.StatusCode == HttpStatusCode.OK) return;
                last = response.StatusCode;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
            }
            await Task.Delay(200);
        }
        throw new TimeoutException($"The web host's /healthz did not answer 200 within {timeout.TotalSeconds:0} s (last: {last?.ToString() ?? "no answer"}):\n{Log}");
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
        try
        {
            await using var admin = new NpgsqlConnection(_server);
            await admin.OpenAsync();
            await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS {_database} WITH (FORCE)", admin);
            await drop.ExecuteNonQueryAsync();
        }
        catch (NpgsqlException)
        {
            // The server is the test script's and goes away with it.
        }
        if (Directory.Exists(DataFolder)) Directory.Delete(DataFolder, recursive: true);
    }

    private static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    private static string Require(string variable, string service) =>
        Environment.GetEnvironmentVariable(variable) is { Length: > 0 } value
            ? value
            : throw new InvalidOperationException(
                $"{variable} is not set, so there is no {service} to test against. Run the tests with ./scripts/test.sh "
                + "(it starts the services and sets the variables), or start them with ./scripts/dev-services.sh and export what it prints.");
}
