using static TorchSharp.torch;

namespace Pipeline.Stages.Models;

/// <summary>
/// Chooses the model's answer from its logits at every step (CONVRNN.md "Readout"): the last step (default), the
/// mean or sum over a window, the most confident step, or the first step whose top probability reaches a threshold.
/// Returns the readout logits (B×classes, differentiable) and the step used per example (B, int64).
/// </summary>
public static class Readouts
{
    public static (Tensor Logits, Tensor Step) Apply(ReadoutSpec spec, IReadOnlyList<Tensor> logits)
    {
        var steps = logits.Count;
        var batch = logits[0].shape[0];
        var device = logits[0].device;
        switch (spec.Kind)
        {
            case ReadoutKind.Last:
                return (logits[^1], HeldScalars.Full([batch], steps - 1, int64, device));
            case ReadoutKind.Mean or ReadoutKind.Sum:
                var from = spec.From ?? 0;
                var to = spec.To ?? steps;
                var window = stack(logits.Skip(from).Take(to - from).ToArray());
                return (spec.Kind == ReadoutKind.Mean ? window.mean([0]) : window.sum(dim: 0), HeldScalars.Full([batch], to - 1, int64, device));
            default:
                var all = stack(logits.ToArray()); // T × B × C
                var chosen = ChooseStep(spec, all, steps, batch);
                // The choice is not differentiable; the chosen logits are.
                var index = chosen.view(1, batch, 1).expand(1, batch, all.shape[2]);
                return (all.gather(0, index).squeeze(0), chosen);
        }
    }

    private static Tensor ChooseStep(ReadoutSpec spec, Tensor all, int steps, long batch)
    {
        using var noGrad = no_grad();
        var confidence = all.detach().softmax(-1).max(-1).values; // T × B
        if (spec.Kind == ReadoutKind.MaxConfidence) return confidence.argmax(0);
        var reached = HeldScalars.GreaterOrEqual(confidence, spec.Threshold).to(int64);
        // argmax returns the first maximal index: the first step over the threshold.
        return where(HeldScalars.Greater(reached.sum(dim: 0), 0), reached.argmax(0), HeldScalars.Full([batch], steps - 1, int64, all.device));
    }
}
