using TorchSharp;
using static TorchSharp.torch;

namespace Pipeline.Stages.Models.Cells;

/// <summary>The local recurrent cells of CONVRNN.md ("Cells"); <see cref="None"/> is a feedforward layer.</summary>
public enum CellType { None, TimeDecay, SimpleRnn, Gru, Lstm, Ugrnn, IntersectionRnn, Rgc }

/// <summary>What a layer hands its cell at one time step besides the cell's own state.</summary>
/// <param name="Residual">The layer's input (before its feedforward conv), for cells with a residual path (RGC); else null.</param>
/// <param name="FeedbackAtOutput">Long-range feedback already passed through the layer's feedback conv, entering at the
/// output (RGC: added to h_in; other cells: added to the emitted output); null when there is none.</param>
public readonly record struct CellExtras(Tensor? Residual, Tensor? FeedbackAtOutput);

/// <summary>
/// A convolutional recurrent cell with explicit state (zero at the start). The layer computes the feedforward drive
/// <c>x</c> (its conv + activation); the cell combines it with its state from step t−1 and returns the output it emits
/// at step t and its new state. Cells never keep tensors between calls: state lives with the caller (the unroller).
/// </summary>
public abstract class RecurrentCell(string name) : nn.Module(name)
{
    public abstract long InChannels { get; }
    public abstract long OutChannels { get; }

    /// <summary>Zero state for a batch at spatial size (height, width).</summary>
    public abstract Tensor[] ZeroState(long batch, long height, long width, Device device, ScalarType dtype);

    /// <summary>One step: (x at t, state from t−1) → (output at t, state at t).</summary>
    public abstract (Tensor Output, Tensor[] State) Step(Tensor x, Tensor[] state, CellExtras extras);
}

/// <summary>A cell whose whole state is one tensor of its output channels (GRU, UGRNN, SimpleRNN, IntersectionRNN,
/// TimeDecay): the channel bookkeeping and zero state they share.</summary>
public abstract class HiddenStateCell : RecurrentCell
{
    protected HiddenStateCell(string name, long inChannels, long outChannels) : base(name)
    {
        CellLayers.RequirePositive(inChannels, "in channels");
        CellLayers.RequirePositive(outChannels, "out channels");
        InChannels = inChannels;
        OutChannels = outChannels;
    }

    public sealed override long InChannels { get; }
    public sealed override long OutChannels { get; }

    public sealed override Tensor[] ZeroState(long batch, long height, long width, Device device, ScalarType dtype) =>
        [torch.zeros(batch, OutChannels, height, width, dtype, device)];
}
