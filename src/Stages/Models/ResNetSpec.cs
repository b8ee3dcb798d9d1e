namespace Pipeline.Stages.Models;

/// <summary>
/// A ResNet preset as data (JSON, snake_case via <see cref="PipelineJson"/>): basic blocks per stage, classes, a width
/// multiplier on torchvision's 64/128/256/512 channels, and input channels. It is what a checkpoint's sidecar records
/// so that the model can be rebuilt before its weights are loaded.
/// </summary>
public sealed record ResNetSpec
{
    private static readonly int[] BaseWidths = [64, 128, 256, 512];

    /// <summary>Basic blocks in layer1…layer4.</summary>
    public required IReadOnlyList<int> Blocks { get; init; }

    public int Classes { get; init; } = 1000;

    /// <summary>Multiplies the stage widths 64/128/256/512; each is rounded to an integer ≥ 1.</summary>
    public double Width { get; init; } = 1.0;

    public int InChannels { get; init; } = 3;

    /// <summary>The CIFAR stem for small inputs: conv1 3×3 stride 1 and no max-pool (same weights' names, smaller conv1).</summary>
    public bool SmallStem { get; init; }

    public static readonly ResNetSpec ResNet18 = new() { Blocks = [2, 2, 2, 2] };
    public static readonly ResNetSpec ResNet34 = new() { Blocks = [3, 4, 6, 3] };

    /// <summary>Channels of layer1…layer4 after the width multiplier.</summary>
    public long[] StageWidths() =>
        BaseWidths.Select(w => Math.Max(1L, (long)Math.Round(w * Width, MidpointRounding.AwayFromZero))).ToArray();

    public void Validate()
    {
        if (Blocks.Count != 4 || Blocks.Any(b => b < 1))
            throw new ArgumentException($"A ResNet needs 4 stages of ≥ 1 block each; got [{string.Join(", ", Blocks)}].");
        if (Classes < 1) throw new ArgumentOutOfRangeException(nameof(Classes), Classes, "classes must be ≥ 1");
        if (!(Width > 0) || double.IsInfinity(Width)) throw new ArgumentOutOfRangeException(nameof(Width), Width, "width must be > 0");
        if (InChannels < 1) throw new ArgumentOutOfRangeException(nameof(InChannels), InChannels, "in_channels must be ≥ 1");
    }
}
