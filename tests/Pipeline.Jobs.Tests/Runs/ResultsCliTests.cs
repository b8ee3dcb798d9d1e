using System.Text.RegularExpressions;
using Pipeline.Jobs.Tests.Engine;

namespace Pipeline.Jobs.Tests.Runs;

/// <summary>
/// The real `pipeline` commands on PostgreSQL and the filesystem store, over the `probe-dag` preset (about 5 s a run):
/// `run --wait` ends with headlines and files a user can open, `runs list` shows overrides, `runs compare` the difference.
/// </summary>
public sealed partial class ResultsCliTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(120);

    [GeneratedRegex(@"^run (\d+) 'probe-dag' \(preset probe-dag\): Succeeded$", RegexOptions.Multiline)]
    private static partial Regex RunLine();

    [GeneratedRegex(@"^  (?:source|left|right|join)\s+(/\S+/probe\.json)$", RegexOptions.Multiline)]
    private static partial Regex ProbeFile();

    [Fact]
    public async Task Run_wait_prints_headlines_and_absolute_paths_and_runs_list_and_compare_show_what_was_overridden()
    {
        await using var env = await PipelineTestEnvironment.CreateAsync();
        env.StartWorker("results-worker");

        var (code, output) = await CliAsync(env, "run", "--preset", "probe-dag", "--wait");
        Assert.True(code == 0, $"exit code {code}:\n{output}");
        var first = long.Parse(RunLine().Match(output).Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.Matches(@"(?m)^  stage\s+kind\s+status\s+headline$", output);
        Assert.Matches(@"(?m)^  join\s+probe\s+succeeded\s+inputs 4$", output);
        // Every stage's probe.json as an absolute path on this machine that exists, not a store-relative one.
        var files = ProbeFile().Matches(output).Select(m => m.Groups[1].Value).ToList();
        Assert.Equal(4, files.Count);
        Assert.All(files, f => Assert.True(File.Exists(f) && f.StartsWith(env.DataFolder, StringComparison.Ordinal), f));
        Assert.Contains("payload.bin (1 KiB)", output, StringComparison.Ordinal);

        (code, output) = await CliAsync(env, "run", "--preset", "probe-dag", "--set", "stages.join.params.note=other", "--wait");
        Assert.True(code == 0, $"exit code {code}:\n{output}");
        var second = long.Parse(RunLine().Match(output).Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);

        (code, output) = await CliAsync(env, "runs", "list");
        Assert.True(code == 0, output);
        Assert.Matches($@"(?m)^\s*{second}\s+Succeeded\s+4/4\s.*probe-dag\s+inputs 4 \(join\)\s+--set stages\.join\.params\.note=other$", output);
        Assert.Matches($@"(?m)^\s*{first}\s+Succeeded\s+4/4\s.*probe-dag\s+inputs 4 \(join\)\s+—$", output);

        (code, output) = await CliAsync(env, "runs", "compare", $"{first}", $"{second}");
        Assert.True(code == 0, output);
        Assert.Matches(@"(?m)^join\.params\.note\s+fan-in\s+other$", output);
        Assert.DoesNotContain("left.params.note", output, StringComparison.Ordinal);

        (code, output) = await CliAsync(env, "runs", "compare", $"{first}", $"{second}", "--all");
        Assert.True(code == 0, output);
        Assert.Matches(@"(?m)^left\.params\.note\s+left branch\s+left branch$", output);

        (code, output) = await CliAsync(env, "runs", "compare", $"{first}", "999999");
        Assert.Equal(2, code);
        Assert.Contains("Run 999999 does not exist.", output, StringComparison.Ordinal);

        (code, output) = await CliAsync(env, "runs", "compare", $"{first}");
        Assert.Equal(2, code);
        Assert.Contains("at least two different run ids", output, StringComparison.Ordinal);
    }

    private static async Task<(int Code, string Output)> CliAsync(PipelineTestEnvironment env, params string[] args)
    {
        using var cli = PipelineProcess.Start("pipeline " + string.Join(' ', args), env.Settings("results-cli"), args);
        var code = await cli.WaitForExitAsync(Timeout);
        return (code, cli.Output);
    }
}
