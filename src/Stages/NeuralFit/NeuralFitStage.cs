using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Mediator;
using Microsoft.Extensions.Logging;
using Pipeline.Stages.Artifacts;
using Pipeline.Stages.Execution;
using Pipeline.Stages.Models;
using Pipeline.Stages.Models.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Pipeline.Stages.NeuralFit;

/// <summary>
/// Fits a trained model (the train stage it depends on) to neural data (a virtual-monkey dependency or a user path): per
/// area, 10 ms bin and layer, cross-validated predictivity with noise ceilings, the best layer per area and the plots.
/// </summary>
[Stage("neural-fit", StageQueues.Gpu, 1)]
public sealed record NeuralFitStage(NeuralFitParams Params, StageContext Context) : IStageRequest<NeuralFitParams>;

public sealed class NeuralFitHandler : IRequestHandler<NeuralFitStage, StageResult>
{
    /// <summary>Per area and method the best layer and every layer's time-averaged score (<see cref="AreaBestLayer"/>): the layer × area map.</summary>
    public const string BestLayersFile = "best_layers.json";

    /// <summary>Per area and method the best layer's score over the bins (<see cref="TemporalProfile"/>).</summary>
    public const string ProfileFile = "temporal_profile.json";

    /// <summary>Share of the progress bar the forward passes take; the fits take the rest.</summary>
    private const double FeatureShare = 0.3;

    public async ValueTask<StageResult> Handle(NeuralFitStage request, CancellationToken cancellationToken)
    {
        var (p, context) = (request.Params, request.Context);
        var ct = cancellationToken;
        var log = context.Logger;
        var wall = Stopwatch.StartNew();
        var device = ComputeDevice.Resolve(p.Device);

        var modelPath = await TrainedModels.DownloadAsync(context, ct);
        var (dataset, groundTruth) = await OpenDataAsync(p, context, ct);
        var assembly = dataset.Assembly;

        using var model = TrainedModels.Load(modelPath, TimeSpec.Neural);
        var areas = ChooseAreas(p, assembly);
        var bins = ChooseBins(p, assembly);
        var layers = p.Layers ?? model.LayerNames;
        var unknown = layers.Where(l => !model.LayerNames.Contains(l)).ToList();
        if (unknown.Count > 0)
            throw new StageInputException($"layers: {string.Join(", ", unknown.Select(l => $"'{l}'"))} not in the model {model.Spec.Name}; its layers are {string.Join(", ", model.LayerNames)}.");
        log.LogInformation("Fitting {Model} ({Layers} layers) to {Source}: {Areas} over {Bins} bins ({From}-{To} ms), {Stimuli} stimuli, methods {Methods}, {Device}",
            model.Spec.Name, layers.Count, dataset.Source, string.Join("/", areas), bins.Count, bins[0].StartMs, bins[^1].EndMs, assembly.StimulusIds.Count,
            string.Join(", ", p.Methods.Select(NeuralPredictivity.MethodName)), device);

        model.Module.to(device);
        var ids = assembly.StimulusIds;
        var images = ids.Select(dataset.Images.ReadBytes).ToList();
        var steps = bins.Select(b => b.Step).ToList();
        var featureClock = Stopwatch.StartNew();
        FeatureReduction reduction;
        try
        {
            reduction = CreateReduction(p, model, layers, steps, ct);
        }
        catch (ArgumentException e)
        {
            throw new StageInputException(e.Message);
        }
        using var reductionScope = reduction;
        Dictionary<string, Tensor> features;
        try
        {
            features = ModelFeatures.Extract(model, images, layers, steps, reduction, p.BatchSize,
                done => context.Progress.Report(FeatureShare * done / images.Count, $"features {done}/{images.Count} stimuli"),
                System.IO.Path.Combine(context.ScratchFolder, "features"), ct);
        }
        catch (ArgumentException e)
        {
            throw new StageInputException(e.Message);
        }
        var featureSeconds = featureClock.Elapsed.TotalSeconds;
        var fitClock = Stopwatch.StartNew();
        IReadOnlyList<PredictivityRow> rows;
        try
        {
            var options = new PredictivityOptions
            {
                Areas = areas,
                Bins = bins,
                Layers = layers,
                Methods = p.Methods,
                Halvings = p.Halvings,
                Regression = p.ToRegression(device.type == DeviceType.CUDA ? device.ToString() : "cpu"),
            };
            rows = NeuralPredictivity.Score(assembly, features, options,
                (fraction, message) => context.Progress.Report(FeatureShare + ((1 - FeatureShare) * fraction), message), ct);
        }
        catch (NeuralDataException e)
        {
            // E.g. stimuli with different repetition counts, which the split-half ceiling cannot halve alike.
            throw new StageInputException($"The neural data could not be scored: {e.Message}");
        }
        finally
        {
            foreach (var t in features.Values) t.Dispose();
        }

        var generating = groundTruth?.Areas.ToDictionary(a => a.Region, a => a.Layer);
        var best = PredictivityReport.BestLayers(rows, p.MinCeiling, generating);
        var profiles = PredictivityReport.Profiles(rows, p.MinCeiling);
        foreach (var b in best)
        {
            log.LogInformation("{Area} ({Method}): best layer {Layer}, mean {ScoredBy} {Score:F3}, {Excluded} bins below min_ceiling {MinCeiling} left out{Truth}",
                b.Area, b.Method, b.Layer, b.ScoredBy, b.Score, b.ExcludedBinsMs.Count, b.MinCeiling, b.GeneratingLayer is { } g ? $" (generated from {g})" : "");
        }
        var timing = (Features: featureSeconds, Fits: fitClock.Elapsed.TotalSeconds);
        log.LogInformation("Features in {FeatureSeconds:F1} s, {Fits} fits in {FitSeconds:F1} s", timing.Features, rows.Count, timing.Fits);
        var summary = await WriteOutputsAsync(context, model.Spec, dataset, DataLabel(p, context), rows, best, profiles, p, device, wall.Elapsed, timing, ct);
        context.Progress.Report(1, "done");
        return new StageResult(context.Outputs, summary);
    }

    /// <summary>What the plots call the data: the file or folder name of 'path', or the virtual-monkey stage's name.</summary>
    private static string DataLabel(NeuralFitParams p, StageContext context) =>
        p.Path is { } path ? System.IO.Path.GetFileName(System.IO.Path.TrimEndingDirectorySeparator(path))
        : context.Inputs.FirstOrDefault(i => i.Value.Contains(context.FindInput(VirtualMonkeyStage.AssemblyFile))).Key ?? "neural data";

    private static async Task<(NeuralDataset Dataset, VirtualMonkeyGroundTruth? Truth)> OpenDataAsync(NeuralFitParams p, StageContext context, CancellationToken ct)
    {
        var fromDependency = context.FindInput(VirtualMonkeyStage.AssemblyFile) is not null;
        if (p.Path is not null && fromDependency)
            throw new StageInputException("path is set and a dependency also provides neural data (assembly.nc); use one: remove 'path' or the virtual-monkey dependency.");
        try
        {
            if (p.Path is { } path) return (NeuralDataReader.Read(path, p.ImagesPath), null);
            if (!fromDependency)
                throw new StageInputException("No neural data: set 'path' to a NetCDF file or plain-format folder, or depend on a virtual-monkey stage.");
            var assembly = await context.DownloadInputAsync(context.RequireInput(VirtualMonkeyStage.AssemblyFile), "data", ct);
            var images = await context.DownloadInputAsync(context.RequireInput(VirtualMonkeyStage.ImagesFile), "data", ct);
            var truthInput = context.FindInput(VirtualMonkeyWriter.GroundTruthFile);
            VirtualMonkeyGroundTruth? truth = null;
            if (truthInput is not null)
            {
                await using var s = await context.Store.OpenReadAsync(truthInput.Path, truthInput.Sha256, ct);
                truth = await JsonSerializer.DeserializeAsync<VirtualMonkeyGroundTruth>(s, PipelineJson.Options, ct);
            }
            return (NeuralDataReader.Read(assembly, images), truth);
        }
        catch (NeuralDataException e)
        {
            throw new StageInputException($"The neural data could not be used: {e.Message}");
        }
    }

    /// <summary>The requested regions (each must have sites), or every region in the data in the usual order.</summary>
    internal static IReadOnlyList<string> ChooseAreas(NeuralFitParams p, NeuralAssembly assembly)
    {
        var present = assembly.Neuroids.Select(n => n.Region).Distinct().ToList();
        if (p.Regions is null) return [.. NeuralAssembly.KnownRegions.Where(present.Contains)];
        var missing = p.Regions.Where(r => assembly.SitesOf(r).Length == 0).ToList();
        if (missing.Count > 0)
            throw new StageInputException($"regions: {string.Join(", ", missing.Select(r => $"'{r}'"))} has no sites in the data; its regions are {string.Join(", ", present)}.");
        return p.Regions;
    }

    /// <summary>The data's bins within [bins_from_ms, bins_to_ms); each must be one 10 ms model step (t ↔ [10t, 10t+10)).</summary>
    internal static IReadOnlyList<FittedBin> ChooseBins(NeuralFitParams p, NeuralAssembly assembly)
    {
        var chosen = assembly.TimeBins.Select((b, i) => (b, i)).Where(x => x.b.StartMs >= p.BinsFromMs && x.b.EndMs <= p.BinsToMs).ToList();
        if (chosen.Count == 0)
        {
            var all = assembly.TimeBins;
            throw new StageInputException($"bins_from_ms/bins_to_ms: [{p.BinsFromMs}, {p.BinsToMs}) ms holds none of the data's bins ({all[0].StartMs}-{all[^1].EndMs} ms in {all.Count} bins); choose a range inside it.");
        }
        var step = VirtualMonkey.StepMs;
        var odd = chosen.Where(x => x.b.EndMs - x.b.StartMs != step || x.b.StartMs % step != 0).Select(x => $"[{x.b.StartMs}, {x.b.EndMs})").ToList();
        if (odd.Count > 0)
            throw new StageInputException($"The data's bins {NeuralDataException.ListIds(odd)} are not 10 ms bins on a 10 ms grid; model step t is the bin [10t, 10t+10) ms. Rebin the data or narrow bins_from_ms/bins_to_ms.");
        return [.. chosen.Select(x => new FittedBin(x.i, x.b.StartMs, x.b.EndMs, x.b.StartMs / step))];
    }

    private static FeatureReduction CreateReduction(NeuralFitParams p, IVisionModel model, IReadOnlyList<string> layers, IReadOnlyList<int> steps, CancellationToken ct) =>
        p.Features.Kind switch
        {
            FeatureReductionKind.Pca => PcaReduction.Fit(model, layers, steps, p.Features.MaxDims, p.Features.PcaImages, p.Seed, p.BatchSize, ct),
            _ => new PoolReduction(p.Features.MaxDims),
        };

    private static async Task<JsonObject> WriteOutputsAsync(StageContext context, ModelSpec spec, NeuralDataset dataset, string dataLabel, IReadOnlyList<PredictivityRow> rows,
        IReadOnlyList<AreaBestLayer> best, IReadOnlyList<TemporalProfile> profiles, NeuralFitParams p, Device device, TimeSpan wall,
        (double Features, double Fits) seconds, CancellationToken ct)
    {
        await context.WriteOutputAsync("predictivity.csv", new MemoryStream(System.Text.Encoding.UTF8.GetBytes(PredictivityReport.Csv(rows, p.MinCeiling))), ct);
        var table = new JsonArray([.. rows.Select(r => (JsonNode)new JsonObject
        {
            ["area"] = r.Area,
            ["bin_start_ms"] = r.BinStartMs,
            ["bin_end_ms"] = r.BinEndMs,
            ["model_step"] = r.Step,
            ["layer"] = r.Layer,
            ["method"] = r.Method,
            ["sites"] = r.Sites,
            ["raw_r"] = PredictivityReport.Finite(r.RawR),
            ["raw_sem"] = PredictivityReport.Finite(r.RawSem),
            ["ceiling"] = PredictivityReport.Finite(r.Ceiling),
            ["noise_corrected"] = PredictivityReport.Finite(r.NoiseCorrected),
            ["sem"] = PredictivityReport.Finite(r.Sem),
            ["noise_corrected_sqrt"] = PredictivityReport.Finite(r.NoiseCorrectedSqrt),
            ["below_min_ceiling"] = !PredictivityReport.ReachesCeiling(r, p.MinCeiling),
        })]);
        await context.WriteJsonAsync("predictivity.json", table, ct);
        var bestJson = JsonSerializer.SerializeToNode(best, PipelineJson.Options)!;
        await context.WriteJsonAsync(BestLayersFile, bestJson, ct);
        await context.WriteJsonAsync(ProfileFile, JsonSerializer.SerializeToNode(profiles, PipelineJson.Options)!, ct);

        var title = $"{spec.Name} → {dataLabel}";
        var primary = NeuralPredictivity.MethodName(p.Methods[0]);
        var primaryBest = best.Where(b => b.Method == primary).ToList();
        // The features were read out with the neural schedule: step t is the bin [10t, 10t+10) ms.
        var imageOffMs = TimeSpec.Neural.ImageOff * VirtualMonkey.StepMs;
        var overTime = PredictivityPlots.OverTime(rows, primary, title, p.MinCeiling, imageOffMs);
        var heatmap = PredictivityPlots.Heatmap(primaryBest, title);
        await context.WriteOutputAsync("predictivity_over_time.png", new MemoryStream(overTime.Png()), ct);
        await context.WriteOutputAsync("predictivity_over_time.svg", new MemoryStream(System.Text.Encoding.UTF8.GetBytes(overTime.Svg())), ct);
        await context.WriteOutputAsync("layer_area_heatmap.png", new MemoryStream(heatmap.Png()), ct);
        await context.WriteOutputAsync("layer_area_heatmap.svg", new MemoryStream(System.Text.Encoding.UTF8.GetBytes(heatmap.Svg())), ct);

        var areas = new JsonObject();
        foreach (var b in primaryBest)
        {
            var area = new JsonObject
            {
                ["best_layer"] = b.Layer,
                [b.ScoredBy] = b.Score,
                ["excluded_bins_ms"] = new JsonArray([.. b.ExcludedBinsMs.Select(ms => (JsonNode)ms)]),
            };
            if (b.GeneratingLayer is { } g)
            {
                area["generating_layer"] = g;
                area["matches_generating_layer"] = b.MatchesGeneratingLayer;
            }
            areas[b.Area] = area;
        }
        var metrics = new JsonObject
        {
            ["model"] = spec.Name,
            ["data"] = p.Path ?? dataLabel,
            ["stimuli"] = dataset.Assembly.StimulusIds.Count,
            ["sites"] = dataset.Assembly.Neuroids.Count,
            ["bins"] = rows.Select(r => r.BinStartMs).Distinct().Count(),
            ["layers"] = new JsonArray([.. rows.Select(r => (JsonNode)r.Layer).DistinctBy(n => n.GetValue<string>())]),
            ["methods"] = new JsonArray([.. p.Methods.Select(m => (JsonNode)NeuralPredictivity.MethodName(m))]),
            ["splits"] = p.Splits,
            ["min_ceiling"] = p.MinCeiling,
            ["features"] = $"{p.Features.Kind.ToString().ToLowerInvariant()} ≤ {p.Features.MaxDims}",
            ["areas"] = areas,
            ["wall_seconds"] = Math.Round(wall.TotalSeconds, 1),
            ["feature_seconds"] = Math.Round(seconds.Features, 1),
            ["fit_seconds"] = Math.Round(seconds.Fits, 1),
            ["fits"] = rows.Count,
            ["device"] = device.type.ToString().ToLowerInvariant(),
            ["threads"] = torch.get_num_threads(),
        };
        await context.WriteJsonAsync("metrics.json", metrics, ct);
        return new JsonObject
        {
            ["model"] = spec.Name,
            ["areas"] = areas.DeepClone(),
            ["wall_seconds"] = Math.Round(wall.TotalSeconds, 1),
        };
    }

}
