using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;
using Pipeline.Jobs.Engine;
using Pipeline.Jobs.Hosting;
using Pipeline.Jobs.RunSpecs;
using Pipeline.Jobs.RunStore;
using Pipeline.Jobs.Runs;

namespace Pipeline.Jobs.Tests.Engine;

/// <summary>
/// A fresh PostgreSQL database (on the server ./scripts/test.sh started), a temporary data folder, and helpers to run
/// the engine in this process or as separate `pipeline worker` processes against the same stores.
/// </summary>
public sealed class PipelineTestEnvironment : IAsyncDisposable
{
    private readonly List<PipelineProcess> _workers = [];
    private readonly List<IHost> _hosts = [];

    private PipelineTestEnvironment(string database, string connectionString, string dataFolder, string? blobs)
    {
        Database = database;
        ConnectionString = connectionString;
        DataFolder = dataFolder;
        Blobs = blobs;
    }

    public string Database { get; }
    public string ConnectionString { get; }
    public string DataFolder { get; }
    public string? Blobs { get; }

    public static async Task<PipelineTestEnvironment> CreateAsync(bool azureBlobs = false)
    {
        var server = new NpgsqlConnectionStringBuilder(TestServices.Postgres);
        var database = $"t_{Guid.NewGuid():N}";
        await using (var admin = new NpgsqlConnection(server.ConnectionString))
        {
            await admin.OpenAsync();
            await using var cmd = new NpgsqlCommand($"CREATE DATABASE {database}", admin);
            await cmd.ExecuteNonQueryAsync();
        }
        server.Database = database;
        var folder = Path.Combine(Path.GetTempPath(), "pipeline-tests", database);
        Directory.CreateDirectory(folder);
        return new PipelineTestEnvironment(database, server.ConnectionString, folder, azureBlobs ? TestServices.Blobs : null);
    }

    /// <summary>Settings every process of this environment shares: fast heartbeats so lost workers are noticed in seconds.</summary>
    public Dictionary<string, string?> Settings(string workerName) => new()
    {
        ["ConnectionStrings:Postgres"] = ConnectionString,
        ["ConnectionStrings:Blobs"] = Blobs,
        ["Pipeline:DataFolder"] = DataFolder,
        ["Pipeline:BlobContainer"] = Database.Replace('_', '-'),
        ["Pipeline:HeartbeatInterval"] = "00:00:00.500",
        ["Pipeline:HeartbeatTimeout"] = "00:00:04",
        ["Pipeline:ReconcileInterval"] = "00:00:01",
        ["Pipeline:WorkerName"] = workerName,
        ["Pipeline:LogLevel"] = "Information",
    };

    /// <summary>The engine in this process; with <paramref name="worker"/> it also executes jobs.</summary>
    public async Task<IHost> StartHostAsync(bool worker, string name = "test-host", IDictionary<string, string?>? settings = null)
    {
        var all = Settings(name);
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>()) all[key] = value;
        var host = PipelineHost.Build(worker, all);
        await host.StartAsync();
        _hosts.Add(host);
        return host;
    }

    /// <summary>A separate `pipeline worker` process (the real executable) on this environment's stores.</summary>
    public PipelineProcess StartWorker(string name, int workers = 1, IDictionary<string, string?>? settings = null)
    {
        var all = Settings(name);
        foreach (var (k, v) in settings ?? new Dictionary<string, string?>()) all[k] = v;
        var w = PipelineProcess.StartWorker(name, all, workers);
        _workers.Add(w);
        return w;
    }

    public static async Task<long> LaunchAsync(IHost host, string specJson, params string[] overrides) =>
        (await host.Services.GetRequiredService<RunLauncher>().LaunchSpecAsync(specJson, "test", overrides, noCache: false)).RunId;

    public static async Task<RunDetail> WaitForRunAsync(IHost host, long runId, TimeSpan timeout) =>
        await WaitUntilAsync(host, runId, r => r.IsFinished, timeout, "finish");

    public static async Task<RunDetail> WaitUntilAsync(IHost host, long runId, Func<RunDetail, bool> condition, TimeSpan timeout, string what)
    {
        var queries = host.Services.GetRequiredService<RunQueries>();
        var clock = Stopwatch.StartNew();
        RunDetail? run = null;
        while (clock.Elapsed < timeout)
        {
            run = await queries.GetAsync(runId);
            if (run is not null && condition(run)) return run;
            await Task.Delay(200);
        }
        throw new TimeoutException($"Run {runId} did not {what} within {timeout}: {Describe(run)}");
    }

    public static string Describe(RunDetail? run) => run is null ? "(missing)" :
        $"{run.Status}; " + string.Join("; ", run.Stages.Select(s => $"{s.Name}={s.Status}#{s.Attempt}@{s.Worker} {s.Error}"));

    public RunStoreContext OpenDb() => new(new DbContextOptionsBuilder<RunStoreContext>().UseNpgsql(ConnectionString).Options);

    public string WorkerLogs => string.Join("\n", _workers.Select(w => $"--- {w.Name}\n{w.Output}"));

    public async ValueTask DisposeAsync()
    {
        foreach (var w in _workers) w.Dispose();
        foreach (var h in _hosts)
        {
            await h.StopAsync(TimeSpan.FromSeconds(10));
            h.Dispose();
        }
        NpgsqlConnection.ClearAllPools();
        await using (var admin = new NpgsqlConnection(TestServices.Postgres))
        {
            await admin.OpenAsync();
            await using var cmd = new NpgsqlCommand($"DROP DATABASE IF EXISTS {Database} WITH (FORCE)", admin);
            await cmd.ExecuteNonQueryAsync();
        }
        try
        {
            Directory.Delete(DataFolder, recursive: true);
        }
        catch (IOException)
        {
            // A worker killed mid-write can leave a file busy for a moment; the temp folder is cleaned by the OS.
        }
    }
}

/// <summary>A `pipeline` child process (a worker, or any command); its output is kept for assertions and failure messages.</summary>
public sealed class PipelineProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly StringBuilder _stdout = new();

    private PipelineProcess(string name, Process process)
    {
        Name = name;
        _process = process;
    }

    public string Name { get; }
    public int Pid => _process.Id;
    public bool HasExited => _process.HasExited;

    /// <summary>Standard output and error, interleaved as they arrived.</summary>
    public string Output
    {
        get { lock (_output) return _output.ToString(); }
    }

    /// <summary>Standard output alone (e.g. a command's --json document).</summary>
    public string StandardOutput
    {
        get { lock (_output) return _stdout.ToString(); }
    }

    /// <summary>`pipeline worker` on every queue.</summary>
    public static PipelineProcess StartWorker(string name, IDictionary<string, string?> settings, int workers) =>
        Start(name, settings, ["worker", "--queues", "default,cpu,gpu", "--workers", workers.ToString(CultureInfo.InvariantCulture)]);

    /// <summary>`pipeline ARGS…` with <paramref name="settings"/> as environment variables (':' becomes '__').</summary>
    public static PipelineProcess Start(string name, IDictionary<string, string?> settings, string[] args, string? workingDirectory = null)
    {
        var bin = AppContext.BaseDirectory;
        var info = new ProcessStartInfo("dotnet", [Path.Combine(bin, "pipeline.dll"), .. args])
        {
            WorkingDirectory = workingDirectory ?? bin,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var (key, value) in settings) info.Environment[key.Replace(":", "__", StringComparison.Ordinal)] = value;
        var p = new Process { StartInfo = info };
        var w = new PipelineProcess(name, p);
        p.OutputDataReceived += (_, e) => w.Append(e.Data, stdout: true);
        p.ErrorDataReceived += (_, e) => w.Append(e.Data, stdout: false);
        p.Start();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return w;
    }

    private void Append(string? line, bool stdout)
    {
        if (line is null) return;
        lock (_output)
        {
            _output.AppendLine(line);
            if (stdout) _stdout.AppendLine(line);
        }
    }

    /// <summary>Waits until some output line satisfies <paramref name="condition"/>.</summary>
    public async Task WaitForOutputAsync(Func<string, bool> condition, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (!Output.Split('\n').Any(condition))
        {
            if (HasExited || clock.Elapsed > timeout) throw new TimeoutException($"{Name}: the expected output did not appear:\n{Output}");
            await Task.Delay(200);
        }
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"{Name} did not exit within {timeout}:\n{Output}");
        }
        _process.WaitForExit(); // flushes the redirected output
        return _process.ExitCode;
    }

    /// <summary>SIGKILL: no shutdown hooks, no checkpoint, no goodbye — as when a VM is evicted.</summary>
    public void Kill()
    {
        _process.Kill(entireProcessTree: true);
        _process.WaitForExit(10_000);
    }

    /// <summary>SIGTERM, as a spot VM's eviction notice or `systemctl stop` sends: the worker shuts down gracefully.</summary>
    public void Terminate()
    {
        Signal("TERM");
        if (!_process.WaitForExit(45_000)) throw new TimeoutException($"{Name} did not stop within 45 s of SIGTERM:\n{Output}");
    }

    /// <summary>SIGSTOP / SIGCONT: a worker frozen (a VM paused, a partition) and woken again.</summary>
    public void Pause() => Signal("STOP");

    public void Resume() => Signal("CONT");

    /// <summary>kill -NAME: INT is Ctrl-C.</summary>
    public void Signal(string name)
    {
        using var kill = Process.Start("kill", [$"-{name}", Pid.ToString(CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    public void Dispose()
    {
        if (!_process.HasExited) Signal("CONT");
        if (!_process.HasExited) Kill();
        _process.Dispose();
    }
}
