using Pipeline.Stages.Data;

namespace Pipeline.Stages.Tests.Data;

public sealed class ShardBenchmarkTests
{
    [Fact]
    public async Task Benchmark_reports_both_cases_with_positive_throughput()
    {
        var results = await ShardBenchmark.RunAsync(syntheticImages: 40, jpegImages: 20, repeats: 1);

        Assert.Equal(["synthetic", "folder-jpeg", "folder-jpeg-to-jpg"], results.Select(r => r.Name));
        Assert.Equal([40, 20, 20], results.Select(r => r.Images));
        Assert.All(results, r => Assert.True(r.ImagesPerSecond > 0));
    }

    [Fact]
    public async Task Full_benchmark_when_asked()
    {
        if (Environment.GetEnvironmentVariable("SHARD_BENCH") is null) return;
        var results = await ShardBenchmark.RunAsync();
        foreach (var r in results)
            Console.WriteLine($"BENCH {r.Name}: {r.Detail}: {r.Images} images, median {r.MedianSeconds:F2} s over {r.Repeats} = {r.ImagesPerSecond:F0} images/s ({r.Threads} threads)");
    }
}
