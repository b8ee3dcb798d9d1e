namespace Pipeline.Stages.Models;

/// <summary>
/// The minimal-unroll control (CONVRNN.md "Time"): the smallest T at which every parameter influences the readout.
/// Under biological unrolling each graph edge (feedforward, feedback, and the decoder's) takes one step, so layer i's
/// output first depends on the image at step d(i) = i, and the decoder's at d = L. A feedback edge j → i first carries
/// image information into i at step d(j) + 1 and reaches the readout L − i steps later. T is one more than the latest
/// of these steps.
/// </summary>
public static class MinimalUnroll
{
    public static int Steps(ModelSpec spec)
    {
        if (spec.Family == ModelFamily.Resnet) return 1;
        var index = spec.Layers.Select((l, i) => (l.Name, i)).ToDictionary(x => x.Name, x => x.i);
        var layers = spec.Layers.Count;
        var latest = layers; // the decoder's first image-dependent step
        foreach (var f in spec.Feedback)
        {
            latest = Math.Max(latest, index[f.From] + 1 + (layers - index[f.To]));
        }
        return latest + 1;
    }
}
