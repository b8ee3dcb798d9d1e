using Pipeline.Bench.WebLoad;

namespace Pipeline.Bench.Tests;

/// <summary>The arithmetic of the dashboard load benchmark's report (bench/web.sh).</summary>
public sealed class LatencyReportTests
{
    [Fact]
    public void Nearest_rank_percentiles_of_one_to_a_hundred_are_their_ranks()
    {
        var values = Enumerable.Range(1, 100).Select(i => (double)i).ToList();

        Assert.Equal(1, Percentiles.NearestRank(values, 0));
        Assert.Equal(50, Percentiles.NearestRank(values, 0.50));
        Assert.Equal(95, Percentiles.NearestRank(values, 0.95));
        Assert.Equal(99, Percentiles.NearestRank(values, 0.99));
        Assert.Equal(100, Percentiles.NearestRank(values, 1));
    }

    [Fact]
    public void A_percentile_of_few_values_is_one_of_them_and_of_none_is_not_a_number()
    {
        Assert.Equal(30, Percentiles.NearestRank([10, 20, 30], 0.95));
        Assert.Equal(20, Percentiles.NearestRank([10, 20, 30], 0.50));
        Assert.True(double.IsNaN(Percentiles.NearestRank([], 0.5)));
    }

    [Theory]
    [InlineData(0.012345, "0.0123")]
    [InlineData(1.2345, "1.23")]
    [InlineData(12.345, "12.3")]
    [InlineData(123.45, "123")]
    [InlineData(1234.5, "1230")]
    [InlineData(9.996, "10.0")]
    [InlineData(999.6, "1000")]
    [InlineData(50, "50.0")]
    [InlineData(0, "0")]
    [InlineData(double.NaN, "–")]
    public void Figures_have_three_significant_digits_and_no_exponent(double value, string written) =>
        Assert.Equal(written, Figures.Significant(value));

    [Fact]
    public void Errors_are_counted_apart_from_latencies_and_in_the_request_rate()
    {
        var pages = new LatencySeries("GET /runs/{id}");
        var api = new LatencySeries("GET /api/runs/{id}");
        foreach (var ms in new[] { 12.0, 8, 30, 20 }) pages.Add(ms);
        pages.Fail("HTTP 500");
        api.Add(5);
        api.Fail("HTTP 500");
        api.Fail("no answer within 10 s");

        var one = pages.Summarize(TimeSpan.FromSeconds(2));
        var all = LatencySeries.Combine("all requests", [pages, api], TimeSpan.FromSeconds(2));

        Assert.Equal((4, 1, 2.5, 12.0, 30.0), (one.Count, one.Errors, one.PerSecond, one.P50, one.Max));
        Assert.Equal((5, 3, 4.0, 12.0), (all.Count, all.Errors, all.PerSecond, all.P50));
        Assert.Equal(2, all.ErrorReasons["HTTP 500"]);
    }
}
