using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Pipeline.Stages.Artifacts;
using Pipeline.Stages.Execution;
using Pipeline.Stages.Models;
using Pipeline.Stages.Models.Checkpoints;
using Pipeline.Stages.NeuralFit;
using Pipeline.Stages.Tests.Data;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Pipeline.Stages.Tests.NeuralFit;

/// <summary>
/// The virtual-monkey and neural-fit stages end to end on a real artifact store: a seeded rgc-shallow (width 0.25,
/// 32 px) saved as a train stage would, a virtual monkey read from that saved model (V4 ← conv3, IT ← conv5, latency 0
/// so that bin t holds step t's features, as the fit maps them), then fits of the same model and of a differently
/// seeded one. Shared by the tests: the 26-step unrolls dominate their cost.
/// </summary>
public sealed class NeuralFitFixture : IDisposable
{
    public const string FitParams = """{"threads": 1, "features": {"max_dims": 256}, "bins_from_ms": 70, "bins_to_ms": 160}""";

    public NeuralFitFixture()
    {
        torch.set_num_threads(2);
        var clock = Stopwatch.StartNew();
        Train = SaveModelAsync(seed: 3).GetAwaiter().GetResult();
        OtherTrain = SaveModelAsync(seed: 11).GetAwaiter().GetResult();
        var monkeyContext = Harness.NewContext(inputs: Inputs(("train", Train)), stageName: "virtual-monkey");
        var monkeyParams = Parse<VirtualMonkeyParams>("""
            {"areas": [{"region": "V4", "layer": "conv3", "latency_steps": 0, "sites": 16}, {"region": "IT", "layer": "conv5", "latency_steps": 0, "sites": 16}],
             "stimuli": 160, "repetitions": 4, "noise": 0.5, "seed": 5, "threads": 2}
            """);
        Monkey = StageTestHarness.RunAsync(new VirtualMonkeyHandler(), new VirtualMonkeyStage(monkeyParams, monkeyContext), CancellationToken.None).AsTask().GetAwaiter().GetResult().Artifacts;
        SynthSeconds = clock.Elapsed.TotalSeconds;
        clock.Restart();
        Same = Fit(Train, FitParams);
        SameSeconds = clock.Elapsed.TotalSeconds;
        Other = Fit(OtherTrain, FitParams);
        GroundTruth = ReadJson<VirtualMonkeyGroundTruth>(Monkey, VirtualMonkeyWriter.GroundTruthFile);
    }

    public StageTestHarness Harness { get; } = new();
    public IReadOnlyList<ArtifactInfo> Train { get; }
    public IReadOnlyList<ArtifactInfo> OtherTrain { get; }
    public IReadOnlyList<ArtifactInfo> Monkey { get; }
    public (StageResult Result, IReadOnlyList<Row> Rows) Same { get; }
    public (StageResult Result, IReadOnlyList<Row> Rows) Other { get; }
    public VirtualMonkeyGroundTruth GroundTruth { get; }
    public double SynthSeconds { get; }
    public double SameSeconds { get; }

    /// <summary>A row of predictivity.json (nulls where undefined).</summary>
    public sealed record Row(string Area, int BinStartMs, int BinEndMs, int ModelStep, string Layer, string Method, int Sites,
        double? RawR, double? RawSem, double? Ceiling, double? NoiseCorrected, double? Sem, double? NoiseCorrectedSqrt, bool BelowMinCeiling);

    public static T Parse<T>(string json) => JsonSerializer.Deserialize<T>(json, PipelineJson.Options) ?? throw new InvalidOperationException("null");

    public static IReadOnlyDictionary<string, IReadOnlyList<ArtifactInfo>> Inputs(params (string Name, IReadOnlyList<ArtifactInfo> Artifacts)[] inputs) =>
        inputs.ToDictionary(i => i.Name, i => i.Artifacts);

    public (StageResult Result, IReadOnlyList<Row> Rows) Fit(IReadOnlyList<ArtifactInfo> train, string json, RecordingProgress? progress = null)
    {
        var context = Harness.NewContext(progress, Inputs(("train", train), ("monkey", Monkey)), stageName: "neural-fit");
        var result = StageTestHarness.RunAsync(new NeuralFitHandler(), new NeuralFitStage(Parse<NeuralFitParams>(json), context), CancellationToken.None).AsTask().GetAwaiter().GetResult();
        return (result, ReadJson<List<Row>>(result.Artifacts, "predictivity.json"));
    }

    public T ReadJson<T>(IEnumerable<ArtifactInfo> artifacts, string name)
    {
        using var s = Harness.Store.OpenReadAsync(artifacts.Single(a => a.Path.EndsWith("/" + name, StringComparison.Ordinal)).Path).GetAwaiter().GetResult();
        return JsonSerializer.Deserialize<T>(s, PipelineJson.Options) ?? throw new InvalidOperationException("null");
    }

    /// <summary>A seeded, untrained model written as the train stage writes it (safetensors + spec sidecar).</summary>
    public async Task<IReadOnlyList<ArtifactInfo>> SaveModelAsync(long seed, string preset = "rgc-shallow", int channels = 3)
    {
        var context = Harness.NewContext(stageName: "train");
        torch.manual_seed(seed);
        var spec = ModelPresets.Load(preset, 32, 4, 0.25) with { InChannels = channels };
        using var model = ModelFactory.Create(spec);
        var path = Path.Combine(context.ScratchFolder, "model.safetensors");
        await ModelCheckpoint.SaveAsync(model.Module, path, JsonSerializer.SerializeToNode(spec, PipelineJson.Options)!);
        foreach (var file in new[] { path, ModelCheckpoint.SidecarPath(path) })
        {
            await using var stream = File.OpenRead(file);
            await context.WriteOutputAsync(Path.GetFileName(file), stream, CancellationToken.None);
        }
        return context.Outputs;
    }

    public void Dispose() => Harness.Dispose();
}

public sealed class NeuralFitStageTests(NeuralFitFixture f, ITestOutputHelper output) : IClassFixture<NeuralFitFixture>
{
    private static double Mean(IEnumerable<NeuralFitFixture.Row> rows) => rows.Average(r => r.NoiseCorrected ?? double.NaN);

    [Fact]
    public void Fitting_the_reference_model_recovers_each_areas_generating_layer_near_the_ceiling()
    {
        var m = f.ReadJson<JsonObject>(f.Same.Result.Artifacts, "metrics.json");
        output.WriteLine($"synth + 2 model saves {f.SynthSeconds:F1} s, same-model fit {f.SameSeconds:F1} s (features {m["feature_seconds"]} s, {m["fits"]} fits {m["fit_seconds"]} s)");
        foreach (var r in f.Same.Rows.Where(r => r.BinStartMs == 100))
            output.WriteLine($"{r.Area} {r.BinStartMs} {r.Layer}: raw {r.RawR:F3} ceiling {r.Ceiling:F3} corrected {r.NoiseCorrected:F3} ± {r.Sem:F3}");
        var best = f.ReadJson<List<AreaBestLayer>>(f.Same.Result.Artifacts, "best_layers.json");
        foreach (var area in f.GroundTruth.Areas)
        {
            var b = best.Single(x => x.Area == area.Region);
            output.WriteLine($"{area.Region}: best {b.Layer} ({b.Score:F3}), generated from {area.Layer}; by layer {string.Join(", ", b.ByLayer.Select(kv => $"{kv.Key} {kv.Value:F3}"))}");
            Assert.Equal(area.Layer, b.Layer);
            Assert.Equal(area.Layer, b.GeneratingLayer);
            Assert.True(b.MatchesGeneratingLayer);
            // Every fitted bin is a generating bin (latency 0: the sites follow their layer from its first arrival on).
            var generating = f.Same.Rows.Where(r => r.Area == area.Region && r.Layer == area.Layer).ToList();
            Assert.Equal(9, generating.Count);                                      // 70, 80, …, 150 ms
            Assert.All(generating, r => Assert.True(r.NoiseCorrected >= 0.9, $"{area.Region} {r.BinStartMs} ms from {r.Layer}: {r.NoiseCorrected:F3}"));
            // Per bin, too, the generating layer is the best one.
            var profile = f.ReadJson<List<TemporalProfile>>(f.Same.Result.Artifacts, "temporal_profile.json").Single(p => p.Area == area.Region);
            Assert.All(profile.Points, p => Assert.Equal(area.Layer, p.BinBestLayer));
        }
        var summary = f.Same.Result.Summary!;
        Assert.True(summary["areas"]!["V4"]!["matches_generating_layer"]!.GetValue<bool>());
    }

    [Fact]
    public void A_differently_seeded_model_predicts_the_same_data_worse()
    {
        foreach (var area in f.GroundTruth.Areas)
        {
            var same = Mean(f.Same.Rows.Where(r => r.Area == area.Region && r.Layer == area.Layer));
            var best = f.Other.Rows.Where(r => r.Area == area.Region).GroupBy(r => r.Layer).Max(g => Mean(g));
            output.WriteLine($"{area.Region}: reference model {same:F3}, other seed's best layer {best:F3}");
            Assert.True(best < same - 0.05, $"{area.Region}: another model's best layer ({best:F3}) should score below the reference's generating layer ({same:F3})");
        }
    }

    [Fact]
    public void The_ceiling_matches_the_reliability_the_known_noise_implies()
    {
        foreach (var area in f.GroundTruth.Areas)
        {
            foreach (var bin in f.Same.Rows.Where(r => r.Area == area.Region && r.Layer == area.Layer))
            {
                var expected = area.ExpectedCeilingPerBin[bin.ModelStep];
                output.WriteLine($"{area.Region} {bin.BinStartMs} ms: ceiling {bin.Ceiling:F3}, expected {expected:F3}");
                Assert.True(Math.Abs(bin.Ceiling!.Value - expected) < 0.06, $"{area.Region} {bin.BinStartMs} ms: ceiling {bin.Ceiling:F3} vs expected {expected:F3}");
            }
        }
    }

    [Fact]
    public async Task The_stage_writes_tables_plots_and_metrics()
    {
        var names = f.Same.Result.Artifacts.Select(a => a.Path[(a.Path.LastIndexOf('/') + 1)..]).Order().ToList();
        Assert.Equal(["best_layers.json", "layer_area_heatmap.png", "layer_area_heatmap.svg", "metrics.json", "predictivity.csv", "predictivity.json",
            "predictivity_over_time.png", "predictivity_over_time.svg", "temporal_profile.json"], names);
        // 2 areas × 9 bins × 5 layers × PLS.
        Assert.Equal(90, f.Same.Rows.Count);
        using (var csv = new StreamReader(await f.Harness.Store.OpenReadAsync(f.Same.Result.Artifacts.Single(a => a.Path.EndsWith(".csv", StringComparison.Ordinal)).Path)))
        {
            var lines = csv.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(PredictivityReport.CsvHeader, lines[0]);
            Assert.Equal(91, lines.Length);
        }
        foreach (var png in f.Same.Result.Artifacts.Where(a => a.Path.EndsWith(".png", StringComparison.Ordinal)))
        {
            await using var stream = await f.Harness.Store.OpenReadAsync(png.Path);
            using var bitmap = SkiaSharp.SKBitmap.Decode(stream);
            Assert.True(bitmap.Width >= 400 && bitmap.Height >= 300);
        }
        using (var svg = new StreamReader(await f.Harness.Store.OpenReadAsync(f.Same.Result.Artifacts.Single(a => a.Path.EndsWith("heatmap.svg", StringComparison.Ordinal)).Path)))
            Assert.Contains("<svg", await svg.ReadToEndAsync(), StringComparison.Ordinal);
        var metrics = f.ReadJson<JsonObject>(f.Same.Result.Artifacts, "metrics.json");
        Assert.Equal(160, metrics["stimuli"]!.GetValue<int>());
        Assert.Equal(NeuralFitParams.DefaultMinCeiling, metrics["min_ceiling"]!.GetValue<double>());
        // The tables flag exactly the bins whose ceiling is below min_ceiling, and the best-layer table lists them.
        Assert.All(f.Same.Rows, r => Assert.Equal(!(r.Ceiling >= NeuralFitParams.DefaultMinCeiling), r.BelowMinCeiling));
        foreach (var b in f.ReadJson<List<AreaBestLayer>>(f.Same.Result.Artifacts, "best_layers.json"))
        {
            Assert.Equal(f.Same.Rows.Where(r => r.Area == b.Area && r.BelowMinCeiling).Select(r => r.BinStartMs).Distinct().Order(), b.ExcludedBinsMs);
        }
        Assert.Equal("conv5", metrics["areas"]!["IT"]!["best_layer"]!.GetValue<string>());
    }

    [Fact]
    public async Task Responses_shuffled_over_stimuli_give_predictivity_near_zero()
    {
        var folder = Path.Combine(f.Harness.Root, "shuffled");
        Directory.CreateDirectory(folder);
        foreach (var name in new[] { VirtualMonkeyStage.AssemblyFile, VirtualMonkeyStage.ImagesFile })
        {
            await using var source = await f.Harness.Store.OpenReadAsync(f.Monkey.Single(a => a.Path.EndsWith("/" + name, StringComparison.Ordinal)).Path);
            await using var file = File.Create(Path.Combine(folder, name));
            await source.CopyToAsync(file);
        }
        var data = NeuralDataReader.Read(Path.Combine(folder, VirtualMonkeyStage.AssemblyFile), Path.Combine(folder, VirtualMonkeyStage.ImagesFile));
        var a = data.Assembly;
        // Each stimulus's responses (every repetition) now belong to another stimulus; ids, objects and features stay.
        var (s, n, t) = (a.StimulusIds.Count, a.Neuroids.Count, a.TimeBins.Count);
        Assert.Equal(a.StimulusIds, a.Presentations.Take(s).Select(p => p.StimulusId));   // repetition-major, as synthesised
        var permutation = Enumerable.Range(0, s).ToArray();
        new Random(17).Shuffle(permutation);
        var responses = new float[a.Responses.Length];
        var width = n * t;
        for (var p = 0; p < a.Presentations.Count; p++)
            Array.Copy(a.Responses, (((p / s) * s) + permutation[p % s]) * width, responses, p * width, width);
        var shuffled = new NeuralAssembly(responses, a.Presentations, a.Neuroids, a.TimeBins);

        using var model = Pipeline.Stages.Models.Checkpoints.TrainedModels.Load(Path.Combine(await DownloadAsync(f.Train, folder), "model.safetensors"), Pipeline.Stages.Models.TimeSpec.Neural);
        var bins = new[] { new FittedBin(8, 80, 90, 8), new FittedBin(12, 120, 130, 12) };
        using var pool = new PoolReduction(256);
        var features = ModelFeatures.Extract(model, [.. a.StimulusIds.Select(data.Images.ReadBytes)], ["conv3", "conv5"], [.. bins.Select(b => b.Step)], pool, 32);
        // What the stage does: the same features in memory-mapped files (one per layer), bounded by the page cache.
        var spillFolder = Path.Combine(folder, "spill");
        var spilled = ModelFeatures.Extract(model, [.. a.StimulusIds.Select(data.Images.ReadBytes)], ["conv3", "conv5"], [.. bins.Select(b => b.Step)], pool, 32, spillFolder: spillFolder);
        Assert.Equal(2, Directory.GetFiles(spillFolder).Length);
        foreach (var (layer, mapped) in spilled)
        {
            Assert.True(mapped.allclose(features[layer], rtol: 0, atol: 0), layer);
            mapped.Dispose();
        }
        try
        {
            var options = new PredictivityOptions { Areas = ["V4", "IT"], Bins = bins, Layers = ["conv3", "conv5"] };
            var rows = NeuralPredictivity.Score(shuffled, features, options);
            var aligned = NeuralPredictivity.Score(a, features, options);
            foreach (var (r, ok) in rows.Zip(aligned)) output.WriteLine($"{r.Area} {r.BinStartMs} {r.Layer}: shuffled raw {r.RawR:F3} ± {r.RawSem:F3}, aligned {ok.RawR:F3}");
            // Chance: 16 held-out stimuli per split, and the sites of an area (reading one layer) are correlated.
            Assert.All(rows, r => Assert.InRange(r.RawR, -0.15, 0.15));
            Assert.InRange(rows.Average(r => r.RawR), -0.08, 0.08);
            // The same features and code score high on the responses in their true order, and the shuffled data stay
            // just as reliable: only the pairing with the images is gone.
            Assert.All(aligned.Where(r => r.Layer == (r.Area == "V4" ? "conv3" : "conv5")), r => Assert.True(r.RawR > 0.8, $"{r.Area} {r.BinStartMs}: {r.RawR:F3}"));
            Assert.All(rows.Zip(aligned), x => Assert.Equal(x.Second.Ceiling, x.First.Ceiling, 6));
        }
        finally
        {
            foreach (var x in features.Values) x.Dispose();
        }
    }

    [Fact]
    public async Task A_grey_feedforward_model_is_unrolled_and_fitted_on_grey_stimuli()
    {
        // Fashion-MNIST models take one channel; BaseNet has no cells but is still unrolled biologically (26 steps).
        var basenet = await f.SaveModelAsync(seed: 2, preset: "basenet", channels: 1);
        var (result, rows) = f.Fit(basenet, """{"threads": 2, "features": {"max_dims": 128}, "bins_from_ms": 70, "bins_to_ms": 100, "splits": 3, "methods": ["pls", "ridge"]}""");
        Assert.Equal(2 * 3 * 5 * 2, rows.Count);
        Assert.Equal(["pls", "ridge"], rows.Select(r => r.Method).Distinct());
        Assert.Equal(4, f.ReadJson<List<AreaBestLayer>>(result.Artifacts, "best_layers.json").Count);   // per area and method
        Assert.All(rows, r => Assert.True(r.RawR is > -1 and <= 1 && r.Ceiling > 0.5, $"{r.Area} {r.BinStartMs} {r.Layer}: {r.RawR}"));
        Assert.Contains(rows, r => r.RawR > 0.5);
        Assert.Contains(result.Artifacts, a => a.Path.EndsWith("/layer_area_heatmap.png", StringComparison.Ordinal));
    }

    [Fact]
    public void Pca_features_fitted_on_separate_images_still_find_the_generating_layer()
    {
        var (result, rows) = f.Fit(f.Train, """
            {"threads": 2, "features": {"kind": "pca", "max_dims": 24, "pca_images": 48}, "layers": ["conv1", "conv3", "conv5"],
             "bins_from_ms": 70, "bins_to_ms": 100, "splits": 5}
            """);
        var best = f.ReadJson<List<AreaBestLayer>>(result.Artifacts, "best_layers.json");
        foreach (var b in best) output.WriteLine($"{b.Area}: {string.Join(", ", b.ByLayer.Select(kv => $"{kv.Key} {kv.Value:F3}"))}");
        Assert.Equal(["conv3", "conv5"], best.Select(b => b.Layer));
        Assert.Equal("pca ≤ 24", f.ReadJson<JsonObject>(result.Artifacts, "metrics.json")["features"]!.GetValue<string>());
        Assert.All(rows.Where(r => r.Layer == "conv3" && r.Area == "V4"), r => Assert.True(r.RawR > 0.5, $"{r.BinStartMs}: {r.RawR}"));
    }

    [Fact]
    public void Params_errors_name_their_field()
    {
        var p = NeuralFitFixture.Parse<NeuralFitParams>("""
            {"regions": ["V4", "V1"], "layers": [], "bins_from_ms": 200, "bins_to_ms": 100, "methods": ["pls", "pls"], "splits": 1,
             "test_fraction": 0.9, "halvings": 0, "features": {"max_dims": 0}, "device": "tpu", "images_path": "/x"}
            """);
        var fields = p.Validate().Select(e => e.Field).ToList();
        Assert.Equal(["images_path", "regions[1]", "layers", "bins_to_ms", "methods", "splits", "test_fraction", "halvings", "features.max_dims", "device"], fields);
        Assert.Empty(new NeuralFitParams().Validate());
        Assert.Contains("latency", Assert.Throws<JsonException>(() => NeuralFitFixture.Parse<VirtualMonkeyParams>("""{"areas": [{"region": "V4", "layer": "conv3", "latency": 2}]}""")).Message);
        var monkey = NeuralFitFixture.Parse<VirtualMonkeyParams>("""{"model": {"preset": "nope", "width": 0}, "repetitions": 1, "areas": [{"region": "V9", "layer": "conv3"}]}""");
        Assert.Equal(["model.preset", "model.width", "repetitions", "areas[0].region"], monkey.Validate().Select(e => e.Field));
    }

    [Theory]
    [InlineData("""{"layers": ["conv3", "conv9"]}""", "layers: 'conv9' not in the model")]
    [InlineData("""{"regions": ["pIT"]}""", "regions: 'pIT' has no sites in the data")]
    [InlineData("""{"bins_from_ms": 300, "bins_to_ms": 400}""", "bins_from_ms/bins_to_ms: [300, 400) ms holds none of the data's bins (0-260 ms")]
    [InlineData("""{"path": "/no/such/assembly.nc"}""", "path is set and a dependency also provides neural data")]
    public async Task Inputs_that_do_not_fit_the_model_or_data_fail_with_the_field_and_the_fix(string json, string message)
    {
        var context = f.Harness.NewContext(inputs: NeuralFitFixture.Inputs(("train", f.Train), ("monkey", f.Monkey)), stageName: "neural-fit");
        var e = await Assert.ThrowsAsync<StageInputException>(async () =>
            await StageTestHarness.RunAsync(new NeuralFitHandler(), new NeuralFitStage(NeuralFitFixture.Parse<NeuralFitParams>(json), context), CancellationToken.None));
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Missing_data_and_a_second_model_source_are_stage_errors()
    {
        var noData = f.Harness.NewContext(inputs: NeuralFitFixture.Inputs(("train", f.Train)), stageName: "neural-fit");
        var e = await Assert.ThrowsAsync<StageInputException>(async () => await StageTestHarness.RunAsync(new NeuralFitHandler(), new NeuralFitStage(new NeuralFitParams(), noData), CancellationToken.None));
        Assert.Contains("No neural data", e.Message, StringComparison.Ordinal);

        var twoModels = f.Harness.NewContext(inputs: NeuralFitFixture.Inputs(("train", f.Train)), stageName: "virtual-monkey");
        var p = NeuralFitFixture.Parse<VirtualMonkeyParams>("""{"model": {"preset": "basenet"}}""");
        e = await Assert.ThrowsAsync<StageInputException>(async () => await StageTestHarness.RunAsync(new VirtualMonkeyHandler(), new VirtualMonkeyStage(p, twoModels), CancellationToken.None));
        Assert.Contains("use one", e.Message, StringComparison.Ordinal);
    }

    private async Task<string> DownloadAsync(IReadOnlyList<ArtifactInfo> artifacts, string folder)
    {
        foreach (var a in artifacts)
        {
            await using var source = await f.Harness.Store.OpenReadAsync(a.Path);
            await using var file = File.Create(Path.Combine(folder, a.Path[(a.Path.LastIndexOf('/') + 1)..]));
            await source.CopyToAsync(file);
        }
        return folder;
    }
}
