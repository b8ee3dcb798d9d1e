using System.Text.Json;
using Pipeline.Stages.Models;
using Pipeline.Stages.Models.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Pipeline.Stages.NeuralFit;

/// <summary>
/// A model's responses to stimuli under the neural schedule (<see cref="TimeSpec.Neural"/>: 26 steps of 10 ms, image off
/// at step 10): every requested layer at every requested step, reduced to at most D dimensions per layer.
/// </summary>
public static class ModelFeatures
{
    /// <summary>
    /// Shows <paramref name="images"/> (PNG/JPEG bytes) to <paramref name="model"/> with the neural schedule and keeps the
    /// reduced features of <paramref name="layers"/> at <paramref name="steps"/>: per layer a float32 CPU tensor
    /// <c>[steps.Count, images, D]</c> (the caller disposes them). A model that runs a single step (ResNet) holds its
    /// step-0 features for the whole presentation. <paramref name="progress"/> gets the images done so far.
    /// </summary>
    public static Dictionary<string, Tensor> Extract(IVisionModel model, IReadOnlyList<byte[]> images, IReadOnlyList<string> layers,
        IReadOnlyList<int> steps, FeatureReduction reduction, int batchSize, Action<int>? progress = null, string? spillFolder = null,
        CancellationToken ct = default)
    {
        var unknown = layers.Where(l => !model.LayerNames.Contains(l)).ToList();
        if (unknown.Count > 0) throw new ArgumentException($"layer(s) {string.Join(", ", unknown)} are not in {model.Spec.Name}; its layers: {string.Join(", ", model.LayerNames)}");
        var slot = steps.Select((t, i) => (t, i)).ToDictionary(x => x.t, x => x.i);
        var unroll = Math.Max(TimeSpec.Neural.Steps, steps.Max() + 1);
        var device = model.Module.parameters().First().device;
        var (size, channels) = ((int)model.Spec.InputSize, model.Spec.InChannels);
        var result = new Dictionary<string, Tensor>();
        var wanted = layers.ToHashSet(StringComparer.Ordinal);
        var singleStep = model is not ConvRnnModel;
        model.Module.eval();
        using var noGrad = no_grad();
        try
        {
            for (var start = 0; start < images.Count; start += batchSize)
            {
                ct.ThrowIfCancellationRequested();
                using var scope = NewDisposeScope();
                var count = Math.Min(batchSize, images.Count - start);
                var batch = StimulusImages.Normalised([.. images.Skip(start).Take(count)], size, channels).to(device);
                var first = start;
                model.Unroll(batch, unroll, (layer, step, output) =>
                {
                    if (!wanted.Contains(layer) || !(singleStep || slot.ContainsKey(step))) return;
                    var reduced = reduction.Reduce(layer, output).to(float32).cpu();
                    if (!result.TryGetValue(layer, out var all))
                    {
                        all = Allocate([steps.Count, images.Count, reduced.shape[1]], spillFolder);
                        all.DetachFromDisposeScope();
                        result[layer] = all;
                    }
                    // A single plain pass (ResNet) stands for every step of the presentation.
                    foreach (var k in singleStep ? Enumerable.Range(0, steps.Count) : [slot[step]]) all[k].narrow(0, first, count).copy_(reduced);
                });
                progress?.Invoke(start + count);
            }
        }
        catch
        {
            foreach (var t in result.Values) t.Dispose();
            throw;
        }
        return result;
    }

    /// <summary>
    /// Zeros of <paramref name="shape"/>, in memory or, with a folder, in a memory-mapped file there: HvM-sized features
    /// (5,760 stimuli × 1,000 dims × 20 steps × 10 layers, 4.6 GB in float32) then live in the page cache, which the
    /// kernel writes back and evicts under pressure, instead of in the worker's anonymous memory.
    /// </summary>
    private static Tensor Allocate(long[] shape, string? folder)
    {
        if (folder is null) return zeros(shape, float32);
        Directory.CreateDirectory(folder);
        var path = Path.Combine(folder, $"{Guid.NewGuid():N}.f32");
        var count = shape.Aggregate(1L, (a, b) => a * b);
        using (var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write)) file.SetLength(count * sizeof(float)); // sparse: reads as zeros
        using var flat = from_file(path, shared: true, size: count, dtype: float32);
        return flat.view(shape);
    }
}

public enum FeatureReductionKind
{
    /// <summary>Average pooling to the largest g×g grid with channels·g² ≤ D (deterministic; needs no other images).</summary>
    Pool,

    /// <summary>Principal components of the layer, fitted on a separate image set (never the test stimuli).</summary>
    Pca,
}

/// <summary>Reduces one layer's output <c>[batch, …]</c> to <c>[batch, ≤ D]</c>.</summary>
public abstract class FeatureReduction : IDisposable
{
    public abstract Tensor Reduce(string layer, Tensor output);

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
    }
}

/// <summary>
/// Spatial average pooling to the largest square grid g ≤ the map size with channels·g² ≤ <see cref="MaxDims"/>; a layer
/// whose channels alone exceed it is an error (raise the limit or use PCA). Flat outputs pass when they fit.
/// </summary>
public sealed class PoolReduction(int maxDims) : FeatureReduction
{
    public int MaxDims { get; } = maxDims;

    public static int Grid(long channels, long height, long width, int maxDims)
    {
        var g = (int)Math.Min(height, width);
        while (g > 1 && channels * g * g > maxDims) g--;
        return g;
    }

    public override Tensor Reduce(string layer, Tensor output)
    {
        if (output.dim() == 4)
        {
            var channels = output.shape[1];
            if (channels > MaxDims)
                throw new ArgumentException($"layer {layer} has {channels} channels, more than features.max_dims ({MaxDims}) even pooled to one value per channel; raise features.max_dims or use features.kind 'pca'");
            var g = Grid(channels, output.shape[2], output.shape[3], MaxDims);
            return nn.functional.adaptive_avg_pool2d(output, [g, g]).flatten(1);
        }
        var flat = output.flatten(1);
        if (flat.shape[1] > MaxDims)
            throw new ArgumentException($"layer {layer} has {flat.shape[1]} features, more than features.max_dims ({MaxDims}); raise it or use features.kind 'pca'");
        return flat;
    }
}

/// <summary>
/// Principal components of each layer, fitted on a separate image set — synthetic occluded objects rendered from the
/// stage's seed, never the test stimuli — over the fitted steps together (rows = images × steps). Large maps are first
/// average-pooled to at most <see cref="PrePoolDims"/> features so that the eigenproblem stays small; the components
/// then come from the smaller of the two Gram matrices.
/// </summary>
public sealed class PcaReduction : FeatureReduction
{
    public const int PrePoolDims = 2048;

    private readonly PoolReduction _prePool = new(PrePoolDims);
    private readonly Dictionary<string, (Tensor Mean, Tensor Components)?> _bases;

    private PcaReduction(Dictionary<string, (Tensor Mean, Tensor Components)?> bases) => _bases = bases;

    /// <summary>Components per layer (null: the pooled layer already fits in D and passes unchanged).</summary>
    public int Dims(string layer) => _bases[layer] is { } b ? (int)b.Components.shape[1] : -1;

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (!disposing) return;
        foreach (var b in _bases.Values.OfType<(Tensor Mean, Tensor Components)>())
        {
            b.Mean.Dispose();
            b.Components.Dispose();
        }
    }

    public override Tensor Reduce(string layer, Tensor output)
    {
        var pooled = _prePool.Reduce(layer, output);
        if (_bases[layer] is not { } basis) return pooled;
        return (pooled.to(float32) - basis.Mean.to(pooled.device)).matmul(basis.Components.to(pooled.device));
    }

    public static PcaReduction Fit(IVisionModel model, IReadOnlyList<string> layers, IReadOnlyList<int> steps, int maxDims, int images, long seed, int batchSize, CancellationToken ct)
    {
        var size = (int)model.Spec.InputSize;
        var source = new Data.SyntheticOccludedObjects(8, size, trainCount: 0, valCount: images, occlusion: 0.3, clutter: 2,
            (long)(Data.DeterministicRandom.Mix((ulong)seed, 0x9CA) >> 1), minContrast: 0);
        var bytes = new List<byte[]>(images);
        for (var i = 0; i < images; i++)
        {
            using var bitmap = source.Render(Data.ShardSplitName.Val, i);
            bytes.Add(Data.ImageCodec.Encode(bitmap, Data.ShardImageFormat.Png, 95));
        }
        var prePool = new PoolReduction(PrePoolDims);
        var raw = ModelFeatures.Extract(model, bytes, layers, steps, prePool, batchSize, ct: ct);
        var bases = new Dictionary<string, (Tensor, Tensor)?>();
        try
        {
            foreach (var (layer, values) in raw)
            {
                using var scope = NewDisposeScope();
                var x = values.reshape(-1, values.shape[2]).to(float64);   // [steps × images, F]
                var (rows, f) = (x.shape[0], x.shape[1]);
                if (f <= maxDims)
                {
                    bases[layer] = null;
                    continue;
                }
                var mean = x.mean([0]);
                var centred = x - mean;
                var k = (int)Math.Min(maxDims, rows - 1);
                Tensor components;
                if (f <= rows)
                {
                    var (_, vectors) = linalg.eigh(centred.T.matmul(centred));            // ascending
                    components = vectors.narrow(1, f - k, k).flip(1);
                }
                else
                {
                    var (values2, vectors) = linalg.eigh(centred.matmul(centred.T));      // [rows, rows], ascending
                    var top = vectors.narrow(1, rows - k, k).flip(1);
                    var lambda = HeldScalars.ClampMin(values2.narrow(0, rows - k, k).flip(0), 1e-12);
                    components = centred.T.matmul(top) / lambda.sqrt();                      // unit-norm right singular vectors
                }
                bases[layer] = (mean.to(float32).DetachFromDisposeScope(), components.to(float32).DetachFromDisposeScope());
            }
        }
        finally
        {
            foreach (var t in raw.Values) t.Dispose();
        }
        return new PcaReduction(bases);
    }
}
