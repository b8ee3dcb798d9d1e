using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pipeline.Stages.Models.Cells;

/// <summary>
/// Convolutional update-gate RNN (Collins et al. 2017; CONVRNN.md "Other cells"). State <c>[h]</c>, output h'
/// (+ feedback at the output). Key: <c>conv.weight/bias</c> (2·out channels: g then c).
/// </summary>
public sealed class UgrnnCell : HiddenStateCell
{
    private const double GateBias = 1.0;
    private readonly Conv2d conv;

    public UgrnnCell(long inChannels, long outChannels, int kernel = 3, string name = "ugrnn") : base(name, inChannels, outChannels)
    {
        CellLayers.RequirePositive(kernel, "cell.kernel");
        conv = CellLayers.SameConv(inChannels + outChannels, 2 * outChannels, kernel);
        RegisterComponents();
    }

    public override (Tensor Output, Tensor[] State) Step(Tensor x, Tensor[] state, CellExtras extras)
    {
        ArgumentNullException.ThrowIfNull(state);
        using var scope = NewDisposeScope();
        var h = state[0];
        // CONVRNN.md UGRNN: g = σ(·+1), c = tanh(·) from one conv over [x, h]; h' = g∘h + (1−g)∘c
        var gc = conv.call(torch.cat([x, h], 1)).chunk(2, 1);
        var g = HeldScalars.Plus(gc[0], GateBias).sigmoid();
        var hNext = gc[1].tanh().lerp(h, g);
        return CellOutputs.Emit(hNext, extras, hNext);
    }
}
