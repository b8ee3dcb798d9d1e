namespace Pipeline.Jobs.Tests.Engine;

/// <summary>`pipeline bench handoff` runs on PostgreSQL with its own worker processes and prints both sides' figures.</summary>
public class HandoffBenchTests
{
    [Fact]
    public async Task Bench_handoff_prints_median_and_p95_for_long_polling_and_the_queue_poll_and_leaves_no_worker_behind()
    {
        await using var env = await PipelineTestEnvironment.CreateAsync();
        using var bench = PipelineProcess.Start("bench", env.Settings("bench"), ["bench", "handoff", "--rounds", "1", "--runs", "2", "--branches", "2", "--seconds", "0"]);

        var code = await bench.WaitForExitAsync(TimeSpan.FromMinutes(3));

        Assert.True(code == 0, bench.Output);
        Assert.Matches(@"long polling\s+3\s+\d+\.\d\s+\d+\.\d", bench.StandardOutput);
        Assert.Matches(@"queue poll only\s+3\s+\d+\.\d\s+\d+\.\d", bench.StandardOutput);
        Assert.Contains("target median < 50 ms and p95 < 150 ms:", bench.StandardOutput, StringComparison.Ordinal);
        await using var db = env.OpenDb();
        Assert.Equal(4, db.Runs.Count());
    }

    [Fact]
    public async Task Bench_handoff_in_embedded_mode_says_it_needs_postgresql()
    {
        var folder = Path.Combine(Path.GetTempPath(), "pipeline-tests", Guid.NewGuid().ToString("N"));
        using var bench = PipelineProcess.Start("bench", new Dictionary<string, string?> { ["Pipeline:DataFolder"] = folder }, ["bench", "handoff"]);

        var code = await bench.WaitForExitAsync(TimeSpan.FromMinutes(1));

        Assert.Equal(2, code);
        Assert.Contains("set ConnectionStrings__Postgres", bench.Output, StringComparison.Ordinal);
    }
}
