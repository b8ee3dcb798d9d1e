using System.Text.Json;
using Pipeline.Stages.NeuralFit;
using TorchSharp;
using static TorchSharp.torch;

namespace Pipeline.Stages.Tests.NeuralFit.Data;

/// <summary>One small synthesis shared by the tests (rgc-shallow at width 0.25, 32 px, 64 stimuli; the 26-step unroll dominates).</summary>
public sealed class VirtualMonkeyFixture
{
    public static readonly VirtualMonkeyOptions Options = new()
    {
        Preset = "rgc-shallow",
        Width = 0.25,
        ImageSize = 32,
        Stimuli = 64,
        Repetitions = 4,
        Noise = 0.5,
        Seed = 3,
        Areas = [new("V4", "conv3", LatencySteps: 5, Sites: 24), new("IT", "conv5", LatencySteps: 4, Sites: 24)],
    };

    public VirtualMonkeyFixture()
    {
        torch.set_num_threads(2);
        Data = VirtualMonkey.Synthesize(Options);
    }

    public VirtualMonkeyData Data { get; }
}

public sealed class VirtualMonkeyTests(VirtualMonkeyFixture fixture) : IClassFixture<VirtualMonkeyFixture>, IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("virtualmonkey-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Shape_and_coordinates_follow_the_neural_schedule()
    {
        var a = fixture.Data.Assembly;
        Assert.Equal(64 * 4, a.Presentations.Count);
        Assert.Equal(48, a.Neuroids.Count);
        Assert.Equal(26, a.TimeBins.Count);
        Assert.Equal(new TimeBin(0, 10), a.TimeBins[0]);
        Assert.Equal(new TimeBin(250, 260), a.TimeBins[^1]);
        Assert.Equal(24, a.SitesOf("V4").Length);
        Assert.Equal(24, a.SitesOf("IT").Length);
        Assert.All(a.Responses, v => Assert.True(float.IsFinite(v)));
        Assert.Equal(64, a.StimulusIds.Count);
        Assert.Contains(a.StimulusObjects, o => o == "circle");
        NeuralDataValidator.Validate(a, "virtual monkey");
    }

    [Fact]
    public void Ground_truth_ceiling_matches_the_empirical_split_half_reliability()
    {
        foreach (var area in fixture.Data.GroundTruth.Areas)
        {
            var empirical = EmpiricalCeilingPerBin(fixture.Data.Assembly, area.Region);
            var driven = Enumerable.Range(area.FirstResponseBin, 26 - area.FirstResponseBin).ToList();
            var mean = driven.Average(t => empirical[t]);
            Assert.InRange(area.ExpectedCeiling, 0.5, 0.99);
            Assert.True(Math.Abs(mean - area.ExpectedCeiling) < 0.05, $"{area.Region}: empirical {mean:F3} vs expected {area.ExpectedCeiling:F3}");
        }
    }

    [Fact]
    public void Sites_respond_only_once_their_layer_has_seen_the_image_plus_the_latency()
    {
        var truth = fixture.Data.GroundTruth.Areas.ToDictionary(a => a.Region);
        // Biological unrolling: layer i (0-based) first sees the image at step i; conv3 is index 2, conv5 index 4.
        Assert.Equal(2, truth["V4"].FirstArrivalStep);
        Assert.Equal(4, truth["IT"].FirstArrivalStep);
        Assert.Equal(7, truth["V4"].FirstResponseBin);
        Assert.Equal(8, truth["IT"].FirstResponseBin);
        foreach (var area in truth.Values)
        {
            var empirical = EmpiricalCeilingPerBin(fixture.Data.Assembly, area.Region);
            for (var t = 0; t < area.FirstResponseBin; t++)
            {
                Assert.Equal(0, area.ExpectedCeilingPerBin[t]);
                Assert.True(Math.Abs(empirical[t]) < 0.3, $"{area.Region} bin {t}: noise-only bins should not be reliable, got {empirical[t]:F3}");
            }
            // The first driven bin carries the first, weak wave of signal: reliable, and as reliable as the ground truth says.
            var first = area.FirstResponseBin;
            Assert.True(empirical[first] > 0.2, $"{area.Region}: the first driven bin should be reliable, got {empirical[first]:F3}");
            Assert.True(Math.Abs(empirical[first] - area.ExpectedCeilingPerBin[first]) < 0.15, $"{area.Region} bin {first}: empirical {empirical[first]:F3} vs expected {area.ExpectedCeilingPerBin[first]:F3}");
        }
    }

    [Fact]
    public void Sites_are_read_out_of_their_own_layer_and_not_of_another()
    {
        var data = fixture.Data;
        using var mean = data.Assembly.AveragedResponses();
        var averaged = mean.data<float>().ToArray();                 // [stimulus, neuroid, bin]
        var (s, n, steps) = (data.Assembly.StimulusIds.Count, data.Assembly.Neuroids.Count, 26);
        var other = new Dictionary<string, string> { ["conv3"] = "conv5", ["conv5"] = "conv3" };
        foreach (var area in data.GroundTruth.Areas)
        {
            double Fit(string layer)
            {
                var (values, dims) = data.LayerFeatures[layer];
                var rs = new List<double>();
                foreach (var site in area.SiteReadouts)
                {
                    var j = data.Assembly.Neuroids.ToList().FindIndex(x => x.NeuroidId == site.NeuroidId);
                    for (var t = area.FirstResponseBin; t < steps; t++)
                    {
                        var predicted = Enumerable.Range(0, s).Select(i => site.Features.Select((f, q) => site.Weights[q] * values[t - area.LatencySteps][(i * dims) + (f % dims)]).Sum()).ToArray();
                        var observed = Enumerable.Range(0, s).Select(i => (double)averaged[(((i * n) + j) * steps) + t]).ToArray();
                        rs.Add(Pearson(predicted, observed));
                    }
                }
                return rs.Average();
            }
            var own = Fit(area.Layer);
            var wrong = Fit(other[area.Layer]);
            // Late bins (after image off) carry little signal, so the mean r over bins is well below 1 even for the true layer.
            Assert.True(own > 0.5, $"{area.Region}: its own layer {area.Layer} should predict it, r = {own:F3}");
            Assert.True(wrong < own / 2, $"{area.Region}: the same read-out of {other[area.Layer]} should predict it much worse, r = {wrong:F3} vs {own:F3}");
        }
    }

    private static double Pearson(double[] x, double[] y)
    {
        var (mx, my) = (x.Average(), y.Average());
        double sxy = 0, sxx = 0, syy = 0;
        for (var i = 0; i < x.Length; i++)
        {
            sxy += (x[i] - mx) * (y[i] - my);
            sxx += (x[i] - mx) * (x[i] - mx);
            syy += (y[i] - my) * (y[i] - my);
        }
        return sxx == 0 || syy == 0 ? 0 : sxy / Math.Sqrt(sxx * syy);
    }

    [Fact]
    public void Written_dataset_reads_back_equal_with_its_images_and_ground_truth()
    {
        var folder = Path.Combine(_dir, "monkey");
        var written = VirtualMonkeyWriter.Write(fixture.Data, folder);
        Assert.Equal(3, written.Count);
        var read = NeuralDataReader.Read(Path.Combine(folder, VirtualMonkeyWriter.AssemblyFile));
        NeuralDataTestFiles.AssertEqual(fixture.Data.Assembly, read.Assembly);
        Assert.Equal(64, read.Images.Ids.Count);
        Assert.Equal(fixture.Data.Stimuli[5].Png, read.Images.ReadBytes(fixture.Data.Stimuli[5].StimulusId));
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, VirtualMonkeyWriter.GroundTruthFile)));
        var areas = json.RootElement.GetProperty("areas");
        Assert.Equal("conv3", areas[0].GetProperty("layer").GetString());
        Assert.Equal(fixture.Data.GroundTruth.Areas[1].ExpectedCeiling, areas[1].GetProperty("expected_ceiling").GetDouble(), 12);
        Assert.Empty(Directory.EnumerateDirectories(_dir, "*.partial-*"));

        var output = NeuralDataTestFiles.RunPython($$"""
            import xarray as xr
            da = xr.open_dataarray("{{Path.Combine(folder, VirtualMonkeyWriter.AssemblyFile)}}")
            print(da.shape, int((da.region == "V4").sum()), str(da.stimulus_id.values[0]))
            """, _dir);
        Assert.Equal("(256, 48, 26) 24 stim00000", output.Trim());
    }

    [Fact]
    public void Images_from_a_folder_with_random_projection_features_are_deterministic_per_seed()
    {
        var folder = Path.Combine(_dir, "stimuli");
        NeuralDataTestFiles.WriteImages(folder, Enumerable.Range(0, 8).Select(i => $"img{i}"), size: 24);
        File.WriteAllLines(Path.Combine(folder, "objects.csv"), ["stimulus_id,object_name", "img0,car", "img1,face"]);
        var options = new VirtualMonkeyOptions
        {
            Preset = "basenet",
            Width = 0.25,
            ImageSize = 32,
            ImagesFolder = folder,
            Repetitions = 2,
            Seed = 5,
            ProjectionDims = 16,
            Areas = [new("IT", "conv3", LatencySteps: 2, Sites: 4)],
        };
        var first = VirtualMonkey.Synthesize(options);
        var again = VirtualMonkey.Synthesize(options);
        Assert.Equal(first.Assembly.Responses, again.Assembly.Responses);
        Assert.Equal(["img0", "img1", "img2"], first.Assembly.StimulusIds.Take(3));
        Assert.Equal(["car", "face", "unknown"], first.Assembly.StimulusObjects.Take(3));
        Assert.Equal("random_projection_16", first.GroundTruth.Features);
        Assert.Equal(16, first.LayerFeatures["conv3"].Dims);
    }

    [Fact]
    public void Writing_into_a_non_empty_folder_fails_and_writes_nothing()
    {
        var folder = Path.Combine(_dir, "busy");
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "keep.txt"), "x");
        var e = Assert.Throws<NeuralDataException>(() => VirtualMonkeyWriter.Write(fixture.Data, folder));
        Assert.Contains("not empty", e.Message);
        Assert.Single(Directory.EnumerateFileSystemEntries(folder));
        Assert.Empty(Directory.EnumerateDirectories(_dir, "*.partial-*"));
    }

    [Fact]
    public void Unknown_layers_and_bad_options_are_rejected_with_the_fix()
    {
        var e = Assert.Throws<ArgumentException>(() => VirtualMonkey.Synthesize(VirtualMonkeyFixture.Options with { Areas = [new("V4", "conv9")] }));
        Assert.Contains("conv9", e.Message);
        Assert.Contains("conv1, conv2, conv3, conv4, conv5", e.Message);
        var bad = (VirtualMonkeyFixture.Options with { Repetitions = 1, Areas = [new("V1", "conv3")] }).Validate().Select(x => x.Field).ToList();
        Assert.Contains("repetitions", bad);
        Assert.Contains("areas[0].region", bad);
        Assert.Equal([new AreaSpec("V4", "conv3", 5, 8), new AreaSpec("IT", "conv5", 3, 8)], AreaSpec.ParseList("V4=conv3, IT=conv5@3", 8));
        Assert.Throws<FormatException>(() => AreaSpec.ParseList("V4:conv3", 8));
    }

    /// <summary>Per bin: median over the region's sites of the Spearman–Brown-corrected correlation (across stimuli)
    /// between the means of the first and second half of the repetitions.</summary>
    internal static double[] EmpiricalCeilingPerBin(NeuralAssembly assembly, string region)
    {
        using var scope = NewDisposeScope();
        var reps = assembly.Repetitions();                      // [R, S, N, T]
        var r = reps.shape[0];
        var sites = tensor(assembly.SitesOf(region).Select(i => (long)i).ToArray());
        var half1 = reps[..(int)(r / 2)].mean([0]).index_select(1, sites).to(float64);
        var half2 = reps[(int)(r / 2)..].mean([0]).index_select(1, sites).to(float64);
        var a = half1 - half1.mean([0], keepdim: true);
        var b = half2 - half2.mean([0], keepdim: true);
        var corr = (a * b).sum([0]) / ((a * a).sum([0]) * (b * b).sum([0])).sqrt();   // [sites, T]
        var sb = 2 * corr / (1 + corr);
        var values = sb.contiguous().data<double>().ToArray();
        var (n, t) = ((int)sb.shape[0], (int)sb.shape[1]);
        return [.. Enumerable.Range(0, t).Select(bin =>
        {
            var column = Enumerable.Range(0, n).Select(i => values[(i * t) + bin]).Order().ToArray();
            return n % 2 == 1 ? column[n / 2] : (column[(n / 2) - 1] + column[n / 2]) / 2;
        })];
    }
}
