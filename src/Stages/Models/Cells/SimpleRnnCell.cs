using Pipeline.Stages.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pipeline.Stages.Models.Cells;

/// <summary>
/// Convolutional simple RNN (CONVRNN.md "Other cells"): h' = elu(LN(W_i*x + W_s*h)). W_i and W_s run as one conv over
/// [x, h]. State <c>[h]</c>, output h' (+ feedback at the output). Keys: <c>conv.weight/bias</c>, and with layer norm
/// <c>layer_norm.weight/bias</c> (per channel, shape (C,1,1); see <see cref="GroupedLayerNorm"/>).
/// </summary>
public sealed class SimpleRnnCell : HiddenStateCell
{
    private readonly Conv2d conv;
    private readonly GroupedLayerNorm? layer_norm;

    public SimpleRnnCell(long inChannels, long outChannels, int kernel = 3, bool layerNorm = false, string name = "simple_rnn")
        : base(name, inChannels, outChannels)
    {
        CellLayers.RequirePositive(kernel, "cell.kernel");
        conv = CellLayers.SameConv(inChannels + outChannels, outChannels, kernel);
        layer_norm = layerNorm ? new GroupedLayerNorm(outChannels, 1) : null;
        RegisterComponents();
    }

    public override (Tensor Output, Tensor[] State) Step(Tensor x, Tensor[] state, CellExtras extras)
    {
        ArgumentNullException.ThrowIfNull(state);
        using var scope = NewDisposeScope();
        // CONVRNN.md SimpleRNN: h' = elu(LN(W_i * x + W_s * h))
        var pre = conv.call(torch.cat([x, state[0]], 1));
        if (layer_norm is not null)
            pre = layer_norm.call(pre);
        var hNext = HeldScalars.Elu(pre);
        return CellOutputs.Emit(hNext, extras, hNext);
    }
}
