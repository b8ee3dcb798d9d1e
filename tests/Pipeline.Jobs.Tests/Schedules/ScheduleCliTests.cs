using Pipeline.Jobs.Cli;
using Pipeline.Jobs.Schedules;
using Pipeline.Jobs.Tests.Engine;

namespace Pipeline.Jobs.Tests.Schedules;

/// <summary>The real `pipeline schedules …` commands on PostgreSQL, with a `pipeline worker` for the triggered run.</summary>
public sealed class ScheduleCliTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task Schedules_add_then_list_shows_the_next_firing_and_trigger_wait_follows_the_linked_run()
    {
        await using var env = await PipelineTestEnvironment.CreateAsync();

        var (code, output) = await CliAsync(env, "schedules", "add", "--name", "nightly", "--cron", "0 2 * * *", "--time-zone", "Europe/Berlin",
            "--preset", "probe-dag", "--set", "stages.join.params.note=nightly");
        Assert.True(code == 0, $"exit code {code}:\n{output}");
        var next = ScheduleCommands.Local(ScheduleTimes.Next("0 2 * * *", "Europe/Berlin", DateTime.UtcNow)!.Value, "Europe/Berlin");
        Assert.Contains($"schedule 'nightly' added; next firing {next}", output, StringComparison.Ordinal);

        (code, output) = await CliAsync(env, "schedules", "list");
        Assert.True(code == 0, output);
        Assert.Matches(@"(?m)^name\s+enabled\s+cron\s+time zone\s+next firing\s+misfire\s+launches\s+last run$", output);
        Assert.Matches($@"(?m)^nightly\s+yes\s+0 2 \* \* \*\s+Europe/Berlin\s+{System.Text.RegularExpressions.Regex.Escape(next)}\s+once\s+preset probe-dag --set stages\.join\.params\.note=nightly\s+—$", output);

        env.StartWorker("schedules-worker");
        (code, output) = await CliAsync(env, "schedules", "trigger", "nightly", "--wait");
        Assert.True(code == 0, $"exit code {code}:\n{output}\n{env.WorkerLogs}");
        Assert.Matches(@"(?m)^run \d+ 'probe-dag' \(preset probe-dag\): Succeeded$", output);

        (code, output) = await CliAsync(env, "schedules", "disable", "nightly");
        Assert.True(code == 0, output);
        (code, output) = await CliAsync(env, "schedules", "list");
        Assert.Matches(@"(?m)^nightly\s+no\s+0 2 \* \* \*\s+Europe/Berlin\s+—\s+once\s+preset probe-dag --set \S+\s+\d+$", output);
    }

    [Fact]
    public async Task Schedules_commands_with_bad_input_exit_2_naming_the_field()
    {
        await using var env = await PipelineTestEnvironment.CreateAsync();

        var (code, output) = await CliAsync(env, "schedules", "add", "--name", "x", "--cron", "61 * * * *", "--time-zone", "Mars/Olympus", "--preset", "probe-dag");
        Assert.Equal(2, code);
        Assert.Contains("cron: '61 * * * *' is not a valid cron expression", output, StringComparison.Ordinal);
        Assert.Contains("time_zone: 'Mars/Olympus' is not a known time zone", output, StringComparison.Ordinal);

        (code, output) = await CliAsync(env, "schedules", "add", "--name", "x", "--cron", "0 2 * * *", "--spec", "/no/such/spec.json");
        Assert.Equal(2, code);
        Assert.Contains("spec: no file '/no/such/spec.json'", output, StringComparison.Ordinal);

        (code, output) = await CliAsync(env, "schedules", "remove", "nope");
        Assert.Equal(2, code);
        Assert.Contains("Schedule 'nope' does not exist.", output, StringComparison.Ordinal);

        (code, output) = await CliAsync(env, "schedules", "list");
        Assert.True(code == 0, output);
        Assert.Contains("No schedules.", output, StringComparison.Ordinal);
    }

    private static async Task<(int Code, string Output)> CliAsync(PipelineTestEnvironment env, params string[] args)
    {
        using var cli = PipelineProcess.Start("pipeline " + string.Join(' ', args), env.Settings("schedules-cli"), args);
        var code = await cli.WaitForExitAsync(Timeout);
        return (code, cli.Output);
    }
}
