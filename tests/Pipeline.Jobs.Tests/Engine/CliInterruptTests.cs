using System.Globalization;
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
        await File.WriteAllTextAsync(spec, Specs.Train(steps: 40, every: 1000, train: 2048));
        string[] args = ["run", "--preset", spec, "--wait"];

        using (var first = Cli(args))
        {
            await first.WaitForOutputAsync(line => line.Contains("train: running", StringComparison.Ordinal) && Percent(line) >= 25, TimeSpan.FromSeconds(150));
            first.Signal("INT");
            var code = await first.WaitForExitAsync(TimeSpan.FromSeconds(60));
            Assert.True(code == 1, $"exit code {code}:\n{first.Output}");
            Assert.Contains("Interrupted", first.Output, StringComparison.Ordinal);
        }

        using var second = Cli([.. args, "--json"]);
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

    /// <summary>A `pipeline` command in embedded mode with its data folder in the test's folder.</summary>
    private PipelineProcess Cli(string[] args) => PipelineProcess.Start("pipeline " + args[0], new Dictionary<string, string?>
    {
        ["Pipeline:DataFolder"] = Path.Combine(_folder, ".pipeline"),
        ["Pipeline:ShutdownGracePeriod"] = "00:00:20",
    }, args, _folder);
}
