using Pipeline.Stages.Models.Cells;

namespace Pipeline.Stages.Models;

/// <summary>
/// The minimal-unroll control (CONVRNN.md "Time"): the smallest T at which every parameter influences the readout.
/// Under biological unrolling each graph edge (feedforward, feedback, and the decoder's) takes one step, so layer i's
/// output first depends on the image at step i and the decoder's (L layers) at step L. Weights that read a cell's own
/// state act one step after that state first holds the image (<see cref="StateDelay"/>), so they reach the readout at
/// L + delay. A feedback edge
/// j → i first carries the image into i at step j + 1 and reaches the readout L − i steps later. T is one more than
/// the latest of these steps (steps count from 0).
/// </summary>
public static class MinimalUnroll
{
    public static int Steps(ModelSpec spec)
    {
        if (spec.Family == ModelFamily.Resnet) return 1;
        var index = spec.Layers.Select((l, i) => (l.Name, i)).ToDictionary(x => x.Name, x => x.i);
        var layers = spec.Layers.Count;
        var latest = layers + spec.Layers.Select(l => StateDelay(l.Cell?.Type ?? CellType.None)).DefaultIfEmpty(0).Max();
        foreach (var f in spec.ActiveFeedback)
        {
            latest = Math.Max(latest, index[f.From] + 1 + (layers - index[f.To]));
        }
        return latest + 1;
    }

    /// <summary>
    /// Steps between a cell's state first holding the image and its state-reading weights changing the layer's output.
    /// One for cells whose output reads their state directly (h slices of the conv over [x, h], peepholes, the decay
    /// d). Two for the RGC: its cell state c gates the output through the old c (ReciprocalGatedCell), so the weights
    /// that update c (W_cc, W_hc) reach the output one step later still.
    /// </summary>
    public static int StateDelay(CellType cell) => cell switch
    {
        CellType.None => 0,
        CellType.Rgc => 2,
        _ => 1,
    };
}
