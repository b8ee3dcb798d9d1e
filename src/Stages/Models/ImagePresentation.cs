using static TorchSharp.torch;

namespace Pipeline.Stages.Models;

/// <summary>
/// What the model sees at step t (CONVRNN.md "Time"): the image for t &lt; image_off, then mean gray. Inputs are
/// normalised by the dataset mean, so mean gray is 0 (<see cref="Gray"/> changes that).
/// </summary>
public sealed record ImagePresentation(int Steps, int? ImageOff, double Gray = 0)
{
    public static ImagePresentation From(TimeSpec time, int? steps = null) => new(steps ?? time.Steps, time.ImageOff);

    public bool ImageShown(int step) => ImageOff is null || step < ImageOff;

    /// <summary>The frame at <paramref name="step"/>; the gray frame is created in the caller's dispose scope.</summary>
    public Tensor Frame(Tensor images, int step) =>
        ImageShown(step) ? images : (Gray == 0 ? zeros_like(images) : HeldScalars.FullLike(images, Gray));
}
