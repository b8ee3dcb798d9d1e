using Pipeline.Stages.Models;
using static TorchSharp.torch;

namespace Pipeline.Stages.Models.Cells;

internal static class CellOutputs
{
    /// <summary>
    /// The step's result, moved out of the step's dispose scope. Cells other than the RGC add feedback that enters at
    /// the output to what they emit, not to their state (RecurrentCell.cs, <see cref="CellExtras"/>).
    /// </summary>
    public static (Tensor Output, Tensor[] State) Emit(Tensor output, CellExtras extras, params Tensor[] state)
    {
        if (extras.FeedbackAtOutput is { } fb)
            output = HeldScalars.Add(output, fb);
        output.MoveToOuterDisposeScope();
        foreach (var s in state)
            s.MoveToOuterDisposeScope();
        return (output, state);
    }
}
