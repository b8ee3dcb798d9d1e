using TorchSharp;
using static TorchSharp.torch;

namespace Pipeline.Stages.Models;

/// <summary>
/// A torchvision-layout ResNet as a library model: one step, no readout choice. The module is the ResNet itself, so
/// its state-dict keys stay torchvision's (no wrapper prefix).
/// </summary>
public sealed class ResNetModel : IVisionModel
{
    private readonly ResNet _net;

    public ResNetModel(ModelSpec spec)
    {
        Spec = spec;
        var layout = spec.Depth == 34 ? ResNetSpec.ResNet34 : ResNetSpec.ResNet18;
        _net = new ResNet(layout with { Classes = spec.Classes, Width = spec.Width, InChannels = spec.InChannels, SmallStem = spec.Stem == StemKind.Small });
    }

    public ModelSpec Spec { get; }
    public nn.Module Module => _net;
    public IReadOnlyList<string> LayerNames => ResNet.FeatureLayers;
    public int DefaultSteps => 1;
    public int MinimalSteps => 1;

    public UnrollResult Unroll(Tensor images, int? steps = null, FeatureTap? tap = null)
    {
        Tensor logits;
        if (tap is null) logits = _net.call(images);
        else
        {
            foreach (var (layer, output) in _net.Features(images)) tap(layer, 0, output);
            logits = _net.call(images);
        }
        return new UnrollResult([logits], logits, zeros(images.shape[0], dtype: int64, device: images.device));
    }

    public void Dispose() => _net.Dispose();
}
