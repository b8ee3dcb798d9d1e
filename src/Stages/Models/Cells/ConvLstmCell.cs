using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pipeline.Stages.Models.Cells;

/// <summary>
/// Convolutional LSTM (CONVRNN.md "Other cells"): one conv over [x, h] gives the four gates in PyTorch's order
/// i, f, g, o. State <c>[h, c]</c>, output h' (+ feedback at the output, not in the state).
/// </summary>
/// <remarks>
/// Keys: <c>conv.weight/bias</c> (4·out channels); with peepholes <c>peephole_i</c>, <c>peephole_f</c>,
/// <c>peephole_o</c>, each (C,1,1); with layer norm <c>gate_norm.weight/bias</c> (4C,1,1) and
/// <c>cell_norm.weight/bias</c> (C,1,1).
/// Choices: the forget bias is a constant +1 (the reference's <c>forget_bias = 1.0</c>; conv biases start at 0).
/// Peepholes are one weight per channel, not per channel×H×W as in the reference (shape [H, W, C]), so the cell works
/// at any spatial size; they start at zero (inactive) and are learned. As in the reference (cells.py ConvLSTMCell)
/// all three peepholes read the previous c — including the output gate's. Layer norm follows the reference too: each
/// gate's pre-activation is normalised over its own C×H×W, and so is c' (before tanh), with per-channel gain/shift.
/// </remarks>
public sealed class ConvLstmCell : RecurrentCell
{
    private const double ForgetBias = 1.0;
    private readonly Parameter? peephole_i, peephole_f, peephole_o;
    private readonly Conv2d conv;
    private readonly GroupedLayerNorm? gate_norm, cell_norm;
    private readonly long inChannels, outChannels;

    public ConvLstmCell(long inChannels, long outChannels, int kernel = 3, bool peepholes = false, bool layerNorm = false, string name = "lstm")
        : base(name)
    {
        CellLayers.RequirePositive(inChannels, "in channels");
        CellLayers.RequirePositive(outChannels, "out channels");
        CellLayers.RequirePositive(kernel, "cell.kernel");
        this.inChannels = inChannels;
        this.outChannels = outChannels;
        conv = CellLayers.SameConv(inChannels + outChannels, 4 * outChannels, kernel);
        if (peepholes)
        {
            peephole_i = CellLayers.NewParameter(torch.zeros(outChannels, 1, 1));
            peephole_f = CellLayers.NewParameter(torch.zeros(outChannels, 1, 1));
            peephole_o = CellLayers.NewParameter(torch.zeros(outChannels, 1, 1));
        }
        if (layerNorm)
        {
            gate_norm = new GroupedLayerNorm(4 * outChannels, 4, "gate_norm");
            cell_norm = new GroupedLayerNorm(outChannels, 1, "cell_norm");
        }
        RegisterComponents();
    }

    public override long InChannels => inChannels;
    public override long OutChannels => outChannels;

    public override Tensor[] ZeroState(long batch, long height, long width, Device device, ScalarType dtype) =>
    [
        torch.zeros(batch, outChannels, height, width, dtype, device),
        torch.zeros(batch, outChannels, height, width, dtype, device),
    ];

    public override (Tensor Output, Tensor[] State) Step(Tensor x, Tensor[] state, CellExtras extras)
    {
        ArgumentNullException.ThrowIfNull(state);
        using var scope = NewDisposeScope();
        var (h, c) = (state[0], state[1]);
        var z = conv.call(torch.cat([x, h], 1));
        if (gate_norm is not null)
            z = gate_norm.call(z);
        var gates = z.chunk(4, 1);
        Tensor i = gates[0], f = gates[1], g = gates[2], o = gates[3];
        if (peephole_i is not null)
        {
            i = HeldScalars.AddProduct(i, c, peephole_i);
            f = HeldScalars.AddProduct(f, c, peephole_f!);
            o = HeldScalars.AddProduct(o, c, peephole_o!);
        }
        // Standard LSTM: c' = σ(f + 1)∘c + σ(i)∘tanh(g); h' = tanh(c')∘σ(o)
        var cNext = HeldScalars.Add(HeldScalars.Plus(f, ForgetBias).sigmoid() * c, i.sigmoid() * g.tanh());
        if (cell_norm is not null)
            cNext = cell_norm.call(cNext);
        var hNext = cNext.tanh() * o.sigmoid();
        return CellOutputs.Emit(hNext, extras, hNext, cNext);
    }
}
