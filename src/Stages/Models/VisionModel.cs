using TorchSharp;
using static TorchSharp.torch;

namespace Pipeline.Stages.Models;

/// <summary>Sees every layer's output at every step; costs nothing when not given. Keep a tensor beyond the call
/// with <c>t.detach().clone().MoveToOuterDisposeScope()</c> (or copy it out).</summary>
public delegate void FeatureTap(string layer, int step, Tensor output);

/// <summary>Logits at every step, the readout (per <see cref="ReadoutSpec"/>) and the step it came from per example.</summary>
public sealed record UnrollResult(IReadOnlyList<Tensor> Logits, Tensor Readout, Tensor ReadoutStep);

/// <summary>
/// Any model of the library, recurrent or feedforward: the module (parameters, state dict, train/eval) and an unroll
/// over time. Feedforward models unroll for one step.
/// </summary>
public interface IVisionModel : IDisposable
{
    ModelSpec Spec { get; }

    /// <summary>The TorchSharp module: parameters, state dict (PyTorch-style keys), train/eval, device moves.</summary>
    nn.Module Module { get; }

    /// <summary>The layer names a <see cref="FeatureTap"/> sees, in order.</summary>
    IReadOnlyList<string> LayerNames { get; }

    /// <summary>T used when none is given: the spec's, or the minimal unroll when the spec asks for it.</summary>
    int DefaultSteps { get; }

    /// <summary>The smallest T at which every parameter influences the readout (<see cref="MinimalUnroll"/>).</summary>
    int MinimalSteps { get; }

    UnrollResult Unroll(Tensor images, int? steps = null, FeatureTap? tap = null);
}
