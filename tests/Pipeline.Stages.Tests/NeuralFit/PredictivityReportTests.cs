using System.Xml.Linq;
using Pipeline.Stages.NeuralFit;

namespace Pipeline.Stages.Tests.NeuralFit;

/// <summary>The best-layer choice, the tables and the over-time figure around the ceiling threshold (min_ceiling).</summary>
public sealed class PredictivityReportTests
{
    private const double MinCeiling = 0.1;

    /// <summary>One area, bins 70–100 ms; the 100 ms bin's ceiling is 0.02, where r / ceiling blows up.</summary>
    private static List<PredictivityRow> Rows()
    {
        var ceilings = new Dictionary<int, double> { [70] = 0.6, [80] = 0.7, [90] = 0.65, [100] = 0.02 };
        var rows = new List<PredictivityRow>();
        foreach (var (bin, ceiling) in ceilings)
        {
            // conv3 is the better layer wherever the ceiling is trustworthy; conv5 wins only through the noisy bin
            // (its mean over all four bins would be (3 × 0.4 + 6) / 4 = 1.8 against conv3's ≈ 0.6).
            rows.Add(Row("IT", bin, "conv3", ceiling, bin == 100 ? -0.5 : 0.7));
            rows.Add(Row("IT", bin, "conv5", ceiling, bin == 100 ? 6.0 : 0.4));
        }
        return rows;
    }

    private static PredictivityRow Row(string area, int bin, string layer, double ceiling, double noiseCorrected) =>
        new(area, bin, bin + 10, bin / 10, layer, "pls", 16, noiseCorrected * ceiling, 0.01, ceiling, noiseCorrected, 0.05);

    [Fact]
    public void A_bin_below_min_ceiling_cannot_make_its_layer_the_best()
    {
        var best = Assert.Single(PredictivityReport.BestLayers(Rows(), MinCeiling));

        Assert.Equal("conv3", best.Layer);
        Assert.Equal(0.7, best.Score!.Value, 9);
        Assert.Equal(0.4, best.ByLayer["conv5"]!.Value, 9);
        Assert.Equal([100], best.ExcludedBinsMs);
        Assert.Equal(PredictivityReport.NoiseCorrectedScore, best.ScoredBy);
        Assert.Equal(MinCeiling, best.MinCeiling);
        // Without the threshold the noisy bin decides, which is what min_ceiling is for.
        Assert.Equal("conv5", Assert.Single(PredictivityReport.BestLayers(Rows(), minCeiling: 0)).Layer);
    }

    [Fact]
    public void When_no_bin_reaches_min_ceiling_the_layers_are_ranked_by_raw_r_and_say_so()
    {
        var rows = Rows().Where(r => r.BinStartMs == 100).ToList();

        var best = Assert.Single(PredictivityReport.BestLayers(rows, MinCeiling));

        Assert.Equal(PredictivityReport.RawScore, best.ScoredBy);
        Assert.Equal("conv5", best.Layer);                         // raw r 0.12 against −0.01
        Assert.Equal(6.0 * 0.02, best.Score!.Value, 9);
        Assert.Equal([100], best.ExcludedBinsMs);
    }

    [Fact]
    public void The_profile_and_the_csv_flag_the_bins_below_min_ceiling()
    {
        var profile = Assert.Single(PredictivityReport.Profiles(Rows(), MinCeiling));
        Assert.Equal("conv3", profile.BestLayer);
        Assert.Equal([false, false, false, true], profile.Points.Select(p => p.BelowMinCeiling));

        var lines = PredictivityReport.Csv(Rows(), MinCeiling).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.EndsWith(",below_min_ceiling", lines[0], StringComparison.Ordinal);
        Assert.Equal(8, lines.Length - 1);
        Assert.All(lines.Skip(1), line => Assert.Equal(line.Split(',')[1] == "100" ? "true" : "false", line.Split(',')[^1]));
    }

    [Theory]
    [InlineData(-0.1)]
    [InlineData(1.0)]
    [InlineData(double.NaN)]
    public void An_invalid_min_ceiling_names_the_field(double value)
    {
        var error = Assert.Single(new NeuralFitParams { MinCeiling = value }.Validate());
        Assert.Equal("min_ceiling", error.Field);
        Assert.Contains("[0, 1)", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Min_ceiling_is_read_from_its_snake_case_field_and_defaults_to_the_one_constant()
    {
        Assert.Equal(NeuralFitParams.DefaultMinCeiling, new NeuralFitParams().MinCeiling);
        Assert.Equal(0.25, NeuralFitFixture.Parse<NeuralFitParams>("""{"min_ceiling": 0.25}""").MinCeiling);
        Assert.Empty(new NeuralFitParams { MinCeiling = 0 }.Validate());
    }

    [Fact]
    public void The_over_time_figure_shows_sem_bands_the_ceiling_the_threshold_and_the_image_off_step()
    {
        var svg = PredictivityPlots.OverTime(Rows(), "pls", "rgc-shallow → monkey", MinCeiling, imageOffMs: 100).Svg();

        var texts = XDocument.Parse(svg).Root!.Descendants().Where(e => e.Name.LocalName == "text").Select(e => e.Value.Trim()).ToList();
        Assert.Contains("bin start (ms)", texts);
        Assert.Contains("noise-corrected r (r / ceiling)", texts);
        Assert.Contains("shaded: ± 1 SEM over splits", texts);
        Assert.Contains("noise ceiling (split-half)", texts);
        Assert.Contains("min_ceiling (0.1)", texts);
        Assert.Contains("image off", texts);
        // The excluded values (−0.5 and 6) are greyed and do not stretch the axis, which spans the trusted scores and the
        // ceiling (0.02 … 0.75): both lie off scale, and the legend counts them.
        Assert.Contains("ceiling < 0.1: not used (2 off scale)", texts);
    }

    [Fact]
    public void The_heatmap_has_a_labelled_colour_bar_and_outlines_the_best_layer()
    {
        var best = PredictivityReport.BestLayers(Rows(), MinCeiling);
        var svg = PredictivityPlots.Heatmap(best, "rgc-shallow → monkey").Svg();

        var texts = XDocument.Parse(svg).Root!.Descendants().Where(e => e.Name.LocalName == "text").Select(e => e.Value.Trim()).ToList();
        Assert.Contains("mean noise-corrected r", texts);
        Assert.Contains("red outline: best layer", texts);
        Assert.Contains("0.70", texts);
        Assert.Contains("0.40", texts);
    }
}
