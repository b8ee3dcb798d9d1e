using Pipeline.Stages.Data;
using Pipeline.Stages.Models;
using Pipeline.Stages.Training;
using static TorchSharp.torch;

namespace Pipeline.Stages.Sweeps;

/// <summary>
/// The logits of every step of one unrolled pass over the validation images (steps × images × classes, on the CPU),
/// and the labels. Biological unrolling is causal (a step reads only earlier steps and the frames up to it), so the
/// first T' steps of a long pass are exactly a pass of T' steps with the same presentation: every readout step, unroll
/// length up to the pass's and readout rule is read from these logits, never recomputed.
/// </summary>
internal sealed class StepLogits : IDisposable
{
    private StepLogits(Tensor logits, Tensor labels) => (Logits, Labels) = (logits, labels);

    /// <summary>Steps × images × classes, float32 on the CPU.</summary>
    public Tensor Logits { get; }

    /// <summary>Images, int64 on the CPU.</summary>
    public Tensor Labels { get; }

    public int Steps => (int)Logits.shape[0];
    public int Images => (int)Logits.shape[1];

    /// <summary>One pass of <paramref name="steps"/> steps (the model's spec sets the presentation) over the loader's images.</summary>
    public static async Task<StepLogits> EvaluateAsync(IVisionModel model, int steps, ShardReader reader, BatchLoaderOptions options,
        Action<int> imagesDone, CancellationToken ct)
    {
        var parts = new List<Tensor>();
        var labels = new List<long>();
        var device = model.Module.parameters().First().device;
        model.Module.eval();
        try
        {
            await using var loader = new BatchLoader(reader, options);
            while (await loader.NextForStageAsync(ct) is { } batch)
            {
                using var scope = NewDisposeScope();
                using var noGrad = no_grad();
                var x = tensor(batch.Images, [batch.Count, options.Channels, options.ImageSize, options.ImageSize]).to(device);
                var result = model.Unroll(x, steps);
                parts.Add(stack([.. result.Logits]).to(float32).cpu().MoveToOuterDisposeScope());
                labels.AddRange(batch.Labels.AsSpan(0, batch.Count).ToArray());
                NativeHeap.Trim();
                imagesDone(batch.Count);
            }
            if (parts.Count == 0) throw new Execution.StageInputException("The validation split has no images; shard with a validation split (e.g. source.val_count or limit_val > 0).");
            return new StepLogits(cat(parts, 1), tensor(labels.ToArray()));
        }
        finally
        {
            foreach (var part in parts) part.Dispose();
        }
    }

    /// <summary>The logits of steps 0 … <paramref name="steps"/> − 1, one images × classes tensor per step (views).</summary>
    public IReadOnlyList<Tensor> Prefix(int steps) => [.. Enumerable.Range(0, steps).Select(t => Logits[t])];

    public void Dispose()
    {
        Logits.Dispose();
        Labels.Dispose();
    }
}
