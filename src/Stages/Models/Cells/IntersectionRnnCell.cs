using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pipeline.Stages.Models.Cells;

/// <summary>
/// Convolutional IntersectionRNN (Collins et al. 2017; CONVRNN.md "Other cells"): a state passed through time and an
/// output passed through depth, which mixes in the input itself, so in and out channels must agree. State <c>[h]</c>,
/// output y (+ feedback at the output). Key: <c>conv.weight/bias</c> (4·out channels: gh, h, gy, y).
/// </summary>
/// <remarks>Both gates get the constant +1 (the reference adds <c>forget_bias</c> to gh and gy alike).</remarks>
public sealed class IntersectionRnnCell : HiddenStateCell
{
    private const double GateBias = 1.0;
    private readonly Conv2d conv;

    public IntersectionRnnCell(long inChannels, long outChannels, int kernel = 3, string name = "intersection_rnn") : base(name, inChannels, outChannels)
    {
        CellLayers.RequirePositive(kernel, "cell.kernel");
        if (inChannels != outChannels)
            throw new ArgumentException(
                $"IntersectionRNN emits y = gy∘x + (1−gy)∘relu(·), so in channels ({inChannels}) must equal out channels ({outChannels}).",
                nameof(outChannels));
        conv = CellLayers.SameConv(2 * outChannels, 4 * outChannels, kernel);
        RegisterComponents();
    }

    public override (Tensor Output, Tensor[] State) Step(Tensor x, Tensor[] state, CellExtras extras)
    {
        ArgumentNullException.ThrowIfNull(state);
        using var scope = NewDisposeScope();
        var h = state[0];
        var z = conv.call(torch.cat([x, h], 1)).chunk(4, 1);
        // CONVRNN.md IntersectionRNN: h' = gh∘h + (1−gh)∘tanh(·); y = gy∘x + (1−gy)∘relu(·)
        var hNext = z[1].tanh().lerp(h, HeldScalars.Plus(z[0], GateBias).sigmoid());
        var y = nn.functional.relu(z[3]).lerp(x, HeldScalars.Plus(z[2], GateBias).sigmoid());
        return CellOutputs.Emit(y, extras, hNext);
    }
}
