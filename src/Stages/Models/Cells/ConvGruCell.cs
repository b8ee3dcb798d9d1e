using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pipeline.Stages.Models.Cells;

/// <summary>
/// Convolutional GRU (CONVRNN.md "Other cells"). State <c>[h]</c>, output h' (+ feedback at the output, which does
/// not enter the state). Keys: <c>gates.weight/bias</c> (2·out channels: r then u), <c>candidate.weight/bias</c>.
/// </summary>
/// <remarks>The +1 on the reset gate is a constant, as in the reference (<c>forget_bias</c>), so conv biases start at
/// zero and load from TF checkpoints unchanged. The reference additionally initialises its gate conv bias to 1 when no
/// bias initialiser is given; CONVRNN.md writes u = σ(·), which is followed here.</remarks>
public sealed class ConvGruCell : HiddenStateCell
{
    private const double ResetBias = 1.0;
    private readonly Conv2d gates;
    private readonly Conv2d candidate;

    public ConvGruCell(long inChannels, long outChannels, int kernel = 3, string name = "gru") : base(name, inChannels, outChannels)
    {
        CellLayers.RequirePositive(kernel, "cell.kernel");
        gates = CellLayers.SameConv(inChannels + outChannels, 2 * outChannels, kernel);
        candidate = CellLayers.SameConv(inChannels + outChannels, outChannels, kernel);
        RegisterComponents();
    }

    public override (Tensor Output, Tensor[] State) Step(Tensor x, Tensor[] state, CellExtras extras)
    {
        ArgumentNullException.ThrowIfNull(state);
        using var scope = NewDisposeScope();
        var h = state[0];
        // CONVRNN.md GRU: r = σ(W_r*[x,h] + 1), u = σ(W_u*[x,h]); c = tanh(W*[x, r∘h]); h' = u∘h + (1−u)∘c
        var ru = gates.call(torch.cat([x, h], 1)).chunk(2, 1);
        var r = HeldScalars.Plus(ru[0], ResetBias).sigmoid();
        var u = ru[1].sigmoid();
        var c = candidate.call(torch.cat([x, r * h], 1)).tanh();
        var hNext = c.lerp(h, u);
        return CellOutputs.Emit(hNext, extras, hNext);
    }
}
