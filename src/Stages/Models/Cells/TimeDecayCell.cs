using Pipeline.Stages.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pipeline.Stages.Models.Cells;

/// <summary>
/// Time decay (CONVRNN.md "Other cells"): s' = d·s + x with one trainable scalar d per layer, initialised 0 (the
/// reference's <c>memory</c> with <c>memory_decay = 0, trainable = true</c>). State <c>[s]</c>, output s'
/// (+ feedback at the output). Key: <c>decay</c>, shape (1).
/// </summary>
public sealed class TimeDecayCell : HiddenStateCell
{
    private readonly Parameter decay;

    public TimeDecayCell(long inChannels, long outChannels, string name = "time_decay") : base(name, inChannels, outChannels)
    {
        if (inChannels != outChannels)
            throw new ArgumentException(
                $"TimeDecay adds its input to its state, so in channels ({inChannels}) must equal out channels ({outChannels}).",
                nameof(outChannels));
        decay = CellLayers.NewParameter(torch.zeros(1));
        RegisterComponents();
    }

    /// <summary>The decay d (a read-only view of the parameter's value).</summary>
    public double Decay => decay.ToDouble();

    public override (Tensor Output, Tensor[] State) Step(Tensor x, Tensor[] state, CellExtras extras)
    {
        ArgumentNullException.ThrowIfNull(state);
        using var scope = NewDisposeScope();
        // CONVRNN.md TimeDecay: s' = d·s + x
        var sNext = HeldScalars.AddProduct(x, state[0], decay);
        return CellOutputs.Emit(sNext, extras, sNext);
    }
}
