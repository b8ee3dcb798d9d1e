using Pipeline.Stages.Data;
using Pipeline.Stages.Models;
using TorchSharp;
using static TorchSharp.torch;

using Pipeline.Stages.Models.Checkpoints;

namespace Pipeline.Stages.NeuralFit;

/// <summary>A stimulus the virtual monkey saw: its id, object label and PNG bytes.</summary>
public sealed record VirtualStimulus(string StimulusId, string ObjectName, byte[] Png);

/// <summary>What generated one area's sites, and the reliability its noise allows.</summary>
/// <param name="FirstArrivalStep">First model step at which the layer's features depend on the image.</param>
/// <param name="FirstResponseBin">First bin with stimulus-driven signal: latency + first arrival. Earlier bins are noise only.</param>
/// <param name="ExpectedCeilingPerBin">Per bin, the median over sites of the Spearman–Brown-corrected split-half
/// reliability implied by the signal variance v and noise σ over R repetitions: <c>v / (v + σ²/R)</c>.</param>
/// <param name="ExpectedCeiling">Mean of <see cref="ExpectedCeilingPerBin"/> over the driven bins.</param>
/// <param name="SiteReadouts">Per site, the features it sums and their weights (before centring and scaling).</param>
public sealed record AreaGroundTruth(
    string Region, string Layer, int LatencySteps, int FirstArrivalStep, int FirstResponseBin, int Sites, int FeaturesPerSite,
    double NoiseSigma, int Repetitions, double ExpectedCeiling, IReadOnlyList<double> ExpectedCeilingPerBin,
    IReadOnlyList<SiteReadout> SiteReadouts);

/// <summary>How one site reads its layer: <c>Σ_j Weights[j] · feature[Features[j]]</c>.</summary>
public sealed record SiteReadout(string NeuroidId, IReadOnlyList<int> Features, IReadOnlyList<double> Weights);

/// <summary>The generating process of a virtual-monkey dataset (written as ground_truth.json).</summary>
public sealed record VirtualMonkeyGroundTruth(
    string Preset, double Width, int ImageSize, long Seed, string Features, int StepMs, int Steps, int ImageOffStep,
    int Stimuli, IReadOnlyList<AreaGroundTruth> Areas)
{
    /// <summary>The trained model file the sites read (null: the preset, initialised from the seed).</summary>
    public string? TrainedModel { get; init; }
}

/// <summary>A synthesised dataset: responses, the images shown and the ground truth.</summary>
public sealed record VirtualMonkeyData(NeuralAssembly Assembly, IReadOnlyList<VirtualStimulus> Stimuli, VirtualMonkeyGroundTruth GroundTruth)
{
    /// <summary>The generating layers' reduced features, <c>[step][stimulus * dims + d]</c> (for checks; not written).</summary>
    internal IReadOnlyDictionary<string, (float[][] Values, int Dims)> LayerFeatures { get; init; } = new Dictionary<string, (float[][], int)>();
}

/// <summary>
/// Synthesises neural data from a reference model (see <see cref="VirtualMonkeyOptions"/>). Model step t is bin
/// [10t, 10t+10) ms. A site of an area reading layer ℓ with latency L responds in bin t with
/// <c>s(t) = Σ_j w_j f_ℓ,j(t − L)</c> (k random features j, weights N(0,1), zero for t &lt; L), centred across stimuli per
/// bin and scaled so that its stimulus-driven variance averages 1 over the driven bins, plus N(0, σ²) noise per trial.
/// Everything is seeded: the model weights (torch), the images, the feature choice, weights and noise.
/// </summary>
public static class VirtualMonkey
{
    public const int StepMs = 10;

    public static VirtualMonkeyData Synthesize(VirtualMonkeyOptions options)
    {
        var errors = options.Validate().ToList();
        if (errors.Count > 0) throw new ArgumentException("Invalid virtual monkey options:\n  " + string.Join("\n  ", errors));

        var time = TimeSpec.Neural;
        var steps = time.Steps;
        using var model = ReferenceModel(options);
        var spec = model.Spec;
        var stimuli = options.ImagesFolder is { } folder ? FromFolder(folder) : Render(options, (int)spec.InputSize);

        var unknown = options.Areas.Where(a => !model.LayerNames.Contains(a.Layer)).ToList();
        if (unknown.Count > 0)
        {
            throw new ArgumentException($"layer(s) {string.Join(", ", unknown.Select(a => $"'{a.Layer}' ({a.Region})"))} are not in {spec.Name}; its layers: {string.Join(", ", model.LayerNames)}");
        }
        var layers = options.Areas.Select(a => a.Layer).Distinct().ToList();
        var features = Features(model, stimuli, layers, steps, options);

        var rng = new DeterministicRandom(DeterministicRandom.Mix((ulong)options.Seed, 0xA5EA));
        var sites = new List<(Neuroid Site, float[] Signal)>();   // signal: [stimulus, bin]
        var truths = new List<AreaGroundTruth>();
        var s = stimuli.Count;
        var sigma2 = options.Noise * options.Noise;
        for (var ai = 0; ai < options.Areas.Count; ai++)
        {
            var area = options.Areas[ai];
            var f = features[area.Layer];
            var arrival = FirstArrival(f, s, steps);
            var perSiteCeiling = new double[area.Sites][];
            var readouts = new List<SiteReadout>();
            for (var k = 0; k < area.Sites; k++)
            {
                var id = $"{area.Region}_{k:D3}";
                var (signal, chosen, weights) = SiteSignal(f, s, steps, area.LatencySteps, Math.Min(options.FeaturesPerSite, f.Dims), ref rng, $"{area.Region} site {k}");
                sites.Add((new Neuroid(id, area.Region), signal));
                readouts.Add(new SiteReadout(id, chosen, weights));
                perSiteCeiling[k] = [.. Enumerable.Range(0, steps).Select(t =>
                {
                    var v = Variance(signal, s, steps, t);
                    return v <= 0 ? 0 : v / (v + (sigma2 / options.Repetitions));
                })];
            }
            var perBin = Enumerable.Range(0, steps).Select(t => Median(perSiteCeiling.Select(c => c[t]))).ToArray();
            var first = Math.Min(steps, area.LatencySteps + arrival);
            var expected = first < steps ? perBin.Skip(first).Average() : 0;
            truths.Add(new AreaGroundTruth(area.Region, area.Layer, area.LatencySteps, arrival, first, area.Sites, Math.Min(options.FeaturesPerSite, f.Dims),
                options.Noise, options.Repetitions, expected, perBin, readouts));
        }

        // Presentations repetition-major (every stimulus once, then again), as recording sessions are.
        var presentations = new List<Presentation>();
        for (var r = 0; r < options.Repetitions; r++) presentations.AddRange(stimuli.Select(st => new Presentation(st.StimulusId, r, st.ObjectName)));
        var n = sites.Count;
        var responses = new float[(long)presentations.Count * n * steps];
        var noise = new DeterministicRandom(DeterministicRandom.Mix((ulong)options.Seed, 0x0015E));
        for (var p = 0; p < presentations.Count; p++)
        {
            var stim = p % s;
            for (var j = 0; j < n; j++)
            {
                var signal = sites[j].Signal;
                for (var t = 0; t < steps; t++)
                {
                    responses[(((long)p * n) + j) * steps + t] = (float)(signal[(stim * steps) + t] + (options.Noise * Gaussian(ref noise)));
                }
            }
        }
        var bins = Enumerable.Range(0, steps).Select(t => new TimeBin(t * StepMs, (t + 1) * StepMs)).ToList();
        var assembly = new NeuralAssembly(responses, presentations, [.. sites.Select(x => x.Site)], bins);
        var truth = new VirtualMonkeyGroundTruth(options.ModelPath is null ? options.Preset : spec.Name, spec.Width, (int)spec.InputSize, options.Seed,
            options.ProjectionDims is { } d ? $"random_projection_{d}" : "spatial_mean", StepMs, steps, time.ImageOff ?? steps, s, truths)
        { TrainedModel = options.ModelPath is null ? null : Path.GetFileName(options.ModelPath) };
        return new VirtualMonkeyData(assembly, stimuli, truth) { LayerFeatures = features.ToDictionary(kv => kv.Key, kv => (kv.Value.Values, kv.Value.Dims)) };
    }

    /// <summary>The trained model at <see cref="VirtualMonkeyOptions.ModelPath"/>, or the preset initialised from the seed.</summary>
    private static IVisionModel ReferenceModel(VirtualMonkeyOptions options)
    {
        if (options.ModelPath is { } path) return TrainedModels.Load(path, TimeSpec.Neural);
        torch.manual_seed(options.Seed);
        return ModelFactory.Create(ModelPresets.Load(options.Preset, options.ImageSize, classes: 10, options.Width) with { Time = TimeSpec.Neural });
    }

    /// <summary>A layer's features: <c>Values[t][stimulus * Dims + d]</c>.</summary>
    private sealed record LayerFeatures(float[][] Values, int Dims);

    private static Dictionary<string, LayerFeatures> Features(IVisionModel model, IReadOnlyList<VirtualStimulus> stimuli, List<string> layers, int steps, VirtualMonkeyOptions options)
    {
        var s = stimuli.Count;
        var values = layers.ToDictionary(l => l, _ => new float[steps][]);
        var dims = new Dictionary<string, int>();
        var projections = new Dictionary<string, Tensor>();
        model.Module.eval();
        using var noGrad = no_grad();
        try
        {
            for (var start = 0; start < s; start += options.BatchSize)
            {
                using var scope = NewDisposeScope();
                var batch = stimuli.Skip(start).Take(options.BatchSize).Select(x => x.Png).ToList();
                var images = StimulusImages.Normalised(batch, (int)model.Spec.InputSize, model.Spec.InChannels);
                var offset = start;
                model.Unroll(images, steps, (layer, step, output) =>
                {
                    if (!values.TryGetValue(layer, out var perStep)) return;
                    Tensor reduced;
                    if (options.ProjectionDims is { } d)
                    {
                        var flat = output.flatten(1);
                        if (!projections.TryGetValue(layer, out var proj))
                        {
                            proj = Projection(flat.shape[1], d, options.Seed, layer).MoveToOuterDisposeScope();
                            projections[layer] = proj;
                        }
                        reduced = flat.matmul(proj);
                    }
                    else reduced = output.dim() == 4 ? output.mean([2, 3]) : output.flatten(1);
                    var width = (int)reduced.shape[1];
                    dims[layer] = width;
                    perStep[step] ??= new float[s * width];
                    reduced.contiguous().data<float>().CopyTo(perStep[step], offset * width);
                });
            }
        }
        finally
        {
            foreach (var p in projections.Values) p.Dispose();
        }
        // Feedforward models that run a single step (ResNet) report step 0 only: hold it for the whole presentation.
        foreach (var perStep in values.Values)
        {
            for (var t = 1; t < steps; t++) perStep[t] ??= perStep[t - 1];
        }
        return values.ToDictionary(kv => kv.Key, kv => new LayerFeatures(kv.Value, dims[kv.Key]));
    }

    /// <summary>A fixed Gaussian projection [inputs, d] scaled by 1/√inputs, from the seed and the layer name alone.</summary>
    private static Tensor Projection(long inputs, int d, long seed, string layer)
    {
        var rng = new DeterministicRandom(DeterministicRandom.Mix((ulong)seed, 0x960, (ulong)StableHash(layer)));
        var values = new float[inputs * d];
        var scale = 1 / Math.Sqrt(inputs);
        for (var i = 0; i < values.Length; i++) values[i] = (float)(Gaussian(ref rng) * scale);
        return tensor(values, [inputs, d]);
    }

    private static (float[] Signal, int[] Features, double[] Weights) SiteSignal(LayerFeatures f, int s, int steps, int latency, int k, ref DeterministicRandom rng, string name)
    {
        // A draw can pick only features that never vary with the image (dead units): draw again.
        for (var attempt = 0; attempt < 50; attempt++)
        {
            var chosen = DeterministicRandom.Permutation(f.Dims, rng.NextUInt64()).Take(k).ToArray();
            var weights = new double[k];
            for (var j = 0; j < k; j++) weights[j] = Gaussian(ref rng);
            var signal = new float[s * steps];
            for (var t = latency; t < steps; t++)
            {
                var step = f.Values[t - latency];
                double mean = 0;
                for (var i = 0; i < s; i++)
                {
                    double v = 0;
                    for (var j = 0; j < k; j++) v += weights[j] * step[(i * f.Dims) + chosen[j]];
                    signal[(i * steps) + t] = (float)v;
                    mean += v;
                }
                mean /= s;
                for (var i = 0; i < s; i++) signal[(i * steps) + t] -= (float)mean;
            }
            var variances = Enumerable.Range(0, steps).Select(t => Variance(signal, s, steps, t)).ToArray();
            var max = variances.Max();
            if (max < 1e-12) continue;
            // Bins whose features do not depend on the image yet are exactly zero, not rounding noise.
            var driven = 0;
            double total = 0;
            for (var t = 0; t < steps; t++)
            {
                if (variances[t] < 1e-8 * max)
                {
                    for (var i = 0; i < s; i++) signal[(i * steps) + t] = 0;
                    continue;
                }
                driven++;
                total += variances[t];
            }
            var scale = 1 / Math.Sqrt(total / driven);
            for (var i = 0; i < signal.Length; i++) signal[i] = (float)(signal[i] * scale);
            return (signal, chosen, weights);
        }
        throw new InvalidOperationException($"{name}: every draw of features was constant across stimuli; the layer does not respond to these images");
    }

    /// <summary>The first step at which the layer's features vary across stimuli.</summary>
    private static int FirstArrival(LayerFeatures f, int s, int steps)
    {
        var spread = new double[steps];
        for (var t = 0; t < steps; t++)
        {
            double total = 0;
            for (var d = 0; d < f.Dims; d++)
            {
                double sum = 0, sq = 0;
                for (var i = 0; i < s; i++)
                {
                    double v = f.Values[t][(i * f.Dims) + d];
                    sum += v;
                    sq += v * v;
                }
                total += Math.Max(0, (sq / s) - ((sum / s) * (sum / s)));
            }
            spread[t] = total;
        }
        var max = spread.Max();
        for (var t = 0; t < steps; t++)
            if (spread[t] > 1e-8 * max) return t;
        return steps;
    }

    private static double Variance(float[] signal, int s, int steps, int t)
    {
        double sum = 0, sq = 0;
        for (var i = 0; i < s; i++)
        {
            double v = signal[(i * steps) + t];
            sum += v;
            sq += v * v;
        }
        return Math.Max(0, (sq / s) - ((sum / s) * (sum / s)));
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
    }

    /// <summary>Box–Muller on the deterministic generator (the sequence is fixed by this code, not the runtime).</summary>
    internal static double Gaussian(ref DeterministicRandom rng)
    {
        var u = 1 - rng.NextDouble();
        return Math.Sqrt(-2 * Math.Log(u)) * Math.Cos(2 * Math.PI * rng.NextDouble());
    }

    private static uint StableHash(string text)
    {
        var h = 2166136261u;
        foreach (var c in text) h = (h ^ c) * 16777619u;
        return h;
    }

    private static List<VirtualStimulus> Render(VirtualMonkeyOptions options, int imageSize)
    {
        var source = new SyntheticOccludedObjects(options.Classes, imageSize, trainCount: options.Stimuli, valCount: 0, occlusion: 0.3, clutter: 2, options.Seed, minContrast: 0);
        var stimuli = new List<VirtualStimulus>(options.Stimuli);
        for (var i = 0; i < options.Stimuli; i++)
        {
            using var bitmap = source.Render(ShardSplitName.Train, i);
            stimuli.Add(new VirtualStimulus($"stim{i:D5}", source.Classes[source.ClassOf(ShardSplitName.Train, i)], ImageCodec.Encode(bitmap, ShardImageFormat.Png, 95)));
        }
        return stimuli;
    }

    private static List<VirtualStimulus> FromFolder(string folder)
    {
        var images = StimulusImages.Open(folder);
        var objects = new Dictionary<string, string>(StringComparer.Ordinal);
        var csv = Path.Combine(folder, "objects.csv");
        if (File.Exists(csv))
        {
            foreach (var line in File.ReadLines(csv).Skip(1))
            {
                var cells = line.Split(',', StringSplitOptions.TrimEntries);
                if (cells.Length >= 2) objects[cells[0]] = cells[1];
            }
        }
        var ids = images.Ids.Order(StringComparer.Ordinal).ToList();
        if (ids.Count < 4) throw new NeuralDataException($"{folder}: {ids.Count} images; the virtual monkey needs at least 4");
        return [.. ids.Select(id => new VirtualStimulus(id, objects.GetValueOrDefault(id, "unknown"), images.ReadBytes(id)))];
    }
}
