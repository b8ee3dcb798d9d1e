using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace Pipeline.Jobs.Tests.Engine;

/// <summary>The laptop case: `pipeline run --wait` in embedded mode, stopped with Ctrl-C, then the same command again.</summary>
public sealed class CliInterruptTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "pipeline-cli-tests", Guid.NewGuid().ToString("N"));

    public CliInterruptTests() => Directory.CreateDirectory(_folder);

    [Fact]
    public async Task Ctrl_c_during_run_wait_exits_1_and_the_same_command_resumes_from_the_checkpoint()
    {
        var spec = Path.Combine(_folder, "train.json");
        await File.WriteAllTextAsync(spec, FaultToleranceTests.TrainSpec(steps: 40, every: 1000, train: 2048));
        string[] args = ["run", "--preset", spec, "--wait"];

        using (var first = Cli.Start(_folder, args))
        {
            await first.WaitForOutputAsync(line => line.Contains("train: running", StringComparison.Ordinal) && Percent(line) >= 25, TimeSpan.FromSeconds(150));
            first.Signal("INT");
            var code = await first.WaitForExitAsync(TimeSpan.FromSeconds(60));
            Assert.True(code == 1, $"exit code {code}:\n{first.Output}");
            Assert.Contains("Interrupted", first.Output, StringComparison.Ordinal);
        }

        using var second = Cli.Start(_folder, [.. args, "--json"]);
        var exit = await second.WaitForExitAsync(TimeSpan.FromSeconds(150));
        Assert.True(exit == 0, $"exit code {exit}:\n{second.Output}");
        var run = JsonNode.Parse(second.StandardOutput)!;
        var train = run["stages"]!.AsArray().Single(s => (string)s!["name"]! == "train")!;
        // The interrupted run's stage was handed back to the queue, so this process's worker continues it too: whichever
        // of the two trains first resumes from the checkpoint, and the other reuses its result.
        Assert.Contains((string)train["status"]!, new[] { "succeeded", "cached" });
        // No checkpoint by steps, time or epoch end: the only one is the one written when Ctrl-C stopped the first run.
        Assert.InRange((long)train["summary"]!["resumed_from_step"]!, 10, 39);
    }

    private static int Percent(string line)
    {
        var at = line.IndexOf('%', StringComparison.Ordinal);
        var start = line.LastIndexOf(' ', at) + 1;
        return at > start && int.TryParse(line.AsSpan(start, at - start), CultureInfo.InvariantCulture, out var p) ? p : 0;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>A `pipeline` process in embedded mode with its data folder in <c>folder</c>.</summary>
    private sealed class Cli : IDisposable
    {
        private readonly Process _process;
        private readonly StringBuilder _all = new();
        private readonly StringBuilder _stdout = new();

        private Cli(Process process) => _process = process;

        public string Output
        {
            get { lock (_all) return _all.ToString(); }
        }

        public string StandardOutput
        {
            get { lock (_all) return _stdout.ToString(); }
        }

        public static Cli Start(string folder, string[] args)
        {
            var bin = AppContext.BaseDirectory;
            var info = new ProcessStartInfo("dotnet", [Path.Combine(bin, "pipeline.dll"), .. args])
            {
                WorkingDirectory = folder,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            info.Environment["Pipeline__DataFolder"] = Path.Combine(folder, ".pipeline");
            info.Environment["Pipeline__ShutdownGracePeriod"] = "00:00:20";
            var cli = new Cli(new Process { StartInfo = info });
            cli._process.OutputDataReceived += (_, e) => cli.Append(e.Data, stdout: true);
            cli._process.ErrorDataReceived += (_, e) => cli.Append(e.Data, stdout: false);
            cli._process.Start();
            cli._process.BeginOutputReadLine();
            cli._process.BeginErrorReadLine();
            return cli;
        }

        private void Append(string? line, bool stdout)
        {
            if (line is null) return;
            lock (_all)
            {
                _all.AppendLine(line);
                if (stdout) _stdout.AppendLine(line);
            }
        }

        public async Task WaitForOutputAsync(Func<string, bool> condition, TimeSpan timeout)
        {
            var clock = Stopwatch.StartNew();
            while (!Output.Split('\n').Any(condition))
            {
                if (_process.HasExited || clock.Elapsed > timeout) throw new TimeoutException($"The expected output did not appear:\n{Output}");
                await Task.Delay(200);
            }
        }

        public void Signal(string name)
        {
            using var kill = Process.Start("kill", [$"-{name}", _process.Id.ToString(CultureInfo.InvariantCulture)]);
            kill.WaitForExit();
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
                throw new TimeoutException($"pipeline did not exit within {timeout}:\n{Output}");
            }
            _process.WaitForExit(); // flushes the redirected output
            return _process.ExitCode;
        }

        public void Dispose()
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            _process.Dispose();
        }
    }
}
