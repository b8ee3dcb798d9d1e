using Pipeline.Stages.Execution;
using Pipeline.Stages.Models.Cells;

namespace Pipeline.Stages.Models;

/// <summary>
/// A model of the ConvRNN paper or one of its controls, as data (JSON, snake_case). A preset in Models/Presets is one
/// of these; <c>input_size</c>, <c>classes</c> and <c>width</c> are set per use. See CONVRNN.md "Architectures" and "Time".
/// </summary>
public sealed record ModelSpec
{
    public required string Name { get; init; }
    public string? Description { get; init; }

    /// <summary><c>convrnn</c> (layers + cells + feedback, unrolled in time) or <c>resnet</c> (torchvision layout).</summary>
    public ModelFamily Family { get; init; } = ModelFamily.Convrnn;

    public int InputSize { get; init; } = 224;
    public int Classes { get; init; } = 1000;
    public int InChannels { get; init; } = 3;

    /// <summary>
    /// <c>imagenet</c> (default): the first layer as the spec gives it (BaseNet's 7×7 stride 2; ResNet's 7×7 stride 2 and
    /// 3×3 max-pool). <c>small</c>, for inputs of 64 px and less: the first conv becomes 3×3 stride 1 (ResNet also drops
    /// its stem max-pool, the CIFAR convention). At 32 px the ImageNet stem leaves 8×8 maps after conv1 and 1×1 from
    /// conv4 on, too little for shapes to be told apart; the small stem keeps 16×16 after conv1 and 2×2 at conv4.
    /// </summary>
    public StemKind Stem { get; init; } = StemKind.Imagenet;

    /// <summary>Multiplies every layer's channel count (cells' own depths too), rounded, at least 1.</summary>
    public double Width { get; init; } = 1.0;

    public IReadOnlyList<LayerSpec> Layers { get; init; } = [];
    public IReadOnlyList<FeedbackSpec> Feedback { get; init; } = [];

    /// <summary>The feedback edges the model has: those not <see cref="FeedbackSpec.Disabled"/>.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public IEnumerable<FeedbackSpec> ActiveFeedback => Feedback.Where(f => !f.Disabled);

    /// <summary>How every receiving layer convolves its (concatenated) feedback inputs.</summary>
    public FeedbackConvSpec FeedbackConv { get; init; } = new();

    public DecoderSpec Decoder { get; init; } = new();
    public TimeSpec Time { get; init; } = new();
    public ReadoutSpec Readout { get; init; } = new();

    /// <summary>Train at the smallest T at which every parameter influences the readout (the paper's control).</summary>
    public bool MinimalUnroll { get; init; }

    /// <summary>How the weights start (PyTorch's defaults unless the spec asks for variance scaling).</summary>
    public InitSpec Init { get; init; } = new();

    /// <summary>resnet family: 18 or 34.</summary>
    public int? Depth { get; init; }

    /// <summary>Parameter-matched controls: solve this spec's width or depth to match another preset's parameter count.</summary>
    public MatchSpec? Match { get; init; }

    public IEnumerable<ValidationError> Validate()
    {
        if (InputSize is < 16 or > 1024) yield return new("input_size", $"must be between 16 and 1024 pixels, got {InputSize}");
        if (Classes is < 2 or > 100_000) yield return new("classes", $"must be between 2 and 100000, got {Classes}");
        if (InChannels is < 1 or > 16) yield return new("in_channels", $"must be between 1 and 16, got {InChannels}");
        if (Width is <= 0 or > 16 || double.IsNaN(Width)) yield return new("width", $"must be in (0, 16], got {Width}");
        if (!(Init.Scale is > 0 and <= 100)) yield return new("init.scale", $"must be in (0, 100], got {Init.Scale}");
        if (Family == ModelFamily.Resnet)
        {
            if (Depth is not (18 or 34)) yield return new("depth", "resnet models have depth 18 or 34");
            yield break;
        }
        if (Layers.Count == 0) yield return new("layers", "a convrnn model needs at least one layer");
        var names = new HashSet<string>();
        for (var i = 0; i < Layers.Count; i++)
        {
            var l = Layers[i];
            if (!names.Add(l.Name)) yield return new($"layers[{i}].name", $"'{l.Name}' is used twice");
            if (l.Out < 1) yield return new($"layers[{i}].out", "must be at least 1 channel");
            if (l.Kernel < 1) yield return new($"layers[{i}].kernel", "must be at least 1");
            if (l.Stride < 1) yield return new($"layers[{i}].stride", "must be at least 1");
            if (l.Pool is < 0) yield return new($"layers[{i}].pool", "must be 0 (none) or a pool size ≥ 2");
        }
        for (var i = 0; i < Feedback.Count; i++)
        {
            var f = Feedback[i];
            var from = Layers.ToList().FindIndex(l => l.Name == f.From);
            var to = Layers.ToList().FindIndex(l => l.Name == f.To);
            if (from < 0) yield return new($"feedback[{i}].from", $"'{f.From}' is not a layer; layers: {string.Join(", ", Layers.Select(l => l.Name))}");
            if (to < 0) yield return new($"feedback[{i}].to", $"'{f.To}' is not a layer; layers: {string.Join(", ", Layers.Select(l => l.Name))}");
            if (from >= 0 && to >= 0 && from <= to) yield return new($"feedback[{i}]", $"feedback goes from a later layer to an earlier one; '{f.From}' is not after '{f.To}'");
        }
        if (Time.Steps is < 1 or > 256) yield return new("time.steps", $"must be between 1 and 256, got {Time.Steps}");
        if (Time.ImageOff is { } off && off < 1) yield return new("time.image_off", "must be at least 1 (or null: the image stays on)");
        foreach (var e in Readout.Validate(Time.Steps)) yield return e with { Field = "readout." + e.Field };
    }
}

public enum ModelFamily { Convrnn, Resnet }

public enum StemKind { Imagenet, Small }

public enum InitKind { Default, VarianceScaling }

/// <summary>
/// <c>default</c>: PyTorch's layer defaults. <c>variance_scaling</c>: TensorFlow's initializer that the reference ConvRNN
/// code used — every weight (≥ 2 dimensions) from a truncated normal with variance <c>scale / fan_in</c>, biases zero;
/// scale 2 is He initialisation, CONVRNN.md's median model records 0.639. With ELUs and no normalisation it avoids
/// the long initial plateau PyTorch's defaults give deep unnormalised stacks.
/// </summary>
public sealed record InitSpec
{
    public InitKind Kind { get; init; } = InitKind.Default;
    public double Scale { get; init; } = 2.0;
}

/// <summary>
/// One node of the graph. <c>conv</c>: conv k×k/stride → ELU → cell → pool (BaseNet and rgc_intermediate layers).
/// <c>block</c>: conv 3×3 → ELU → cell → conv 3×3 → + residual (1×1 projection when channels change) → ELU → pool
/// (the intermediate models' ResNet-like blocks).
/// </summary>
public sealed record LayerSpec
{
    public required string Name { get; init; }
    public LayerKind Kind { get; init; } = LayerKind.Conv;
    public required int Out { get; init; }
    public int Kernel { get; init; } = 3;
    public int Stride { get; init; } = 1;

    /// <summary>2×2 max-pool (stride 2) after the layer when 2; 0 for none.</summary>
    public int Pool { get; init; }

    public CellSpec? Cell { get; init; }
}

public enum LayerKind { Conv, Block }

/// <summary>A long-range feedback edge: the output of <see cref="From"/> at t−1, resized (bilinear, align corners) to
/// <see cref="To"/>'s input size, through the receiving layer's feedback conv, added at <see cref="Entry"/>.</summary>
public sealed record FeedbackSpec
{
    public required string From { get; init; }
    public required string To { get; init; }

    /// <summary>
    /// Declared but absent: the model has no such edge. A search switches edges on and off through it
    /// (<c>model.spec.feedback[2].disabled</c>); left out of the JSON when false, so existing specs keep their form.
    /// </summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingDefault)]
    public bool Disabled { get; init; }
}

public enum FeedbackEntry { Input, Out }

/// <summary>How a receiving layer treats its (concatenated) feedback inputs.</summary>
public sealed record FeedbackConvSpec
{
    public FeedbackEntry Entry { get; init; } = FeedbackEntry.Out;
    public int Kernel { get; init; } = 1;

    /// <summary>ELU after the feedback conv (the search configuration); identity otherwise (the median model).</summary>
    public bool Elu { get; init; }
}

/// <summary><c>conv</c>: k×k VALID conv to classes then global average pool (shallow); <c>fc</c>: global average pool then
/// a linear layer (intermediate).</summary>
public sealed record DecoderSpec
{
    public DecoderKind Kind { get; init; } = DecoderKind.Conv;
    public int Kernel { get; init; } = 2;
}

public enum DecoderKind { Conv, Fc }

/// <summary>Image presentation (CONVRNN.md "Time"): T steps; the image from step 0 to image_off−1, mean gray after.</summary>
public sealed record TimeSpec
{
    public int Steps { get; init; } = 16;
    public int? ImageOff { get; init; } = 12;

    public static readonly TimeSpec TrainingShallow = new() { Steps = 16, ImageOff = 12 };
    public static readonly TimeSpec TrainingIntermediate = new() { Steps = 17, ImageOff = 12 };
    public static readonly TimeSpec Neural = new() { Steps = 26, ImageOff = 10 };
}

public enum ReadoutKind { Last, Mean, Sum, MaxConfidence, Threshold }

/// <summary>Which logits are the model's answer (CONVRNN.md "Readout").</summary>
public sealed record ReadoutSpec
{
    public ReadoutKind Kind { get; init; } = ReadoutKind.Last;

    /// <summary>Mean/sum: first step of the window (inclusive); null = 0.</summary>
    public int? From { get; init; }

    /// <summary>Mean/sum: last step of the window (exclusive); null = T.</summary>
    public int? To { get; init; }

    /// <summary>Threshold: the first step whose top softmax probability reaches this (else the last step).</summary>
    public double Threshold { get; init; } = 0.9;

    public IEnumerable<ValidationError> Validate(int steps)
    {
        var from = From ?? 0;
        var to = To ?? steps;
        if (from < 0 || to > steps || from >= to) yield return new("from", $"window [{from}, {to}) must lie within [0, {steps}) and be non-empty");
        if (Threshold is <= 0 or > 1) yield return new("threshold", $"must be in (0, 1], got {Threshold}");
    }
}

public enum MatchBy { Width, Depth }

public sealed record MatchSpec
{
    /// <summary>The preset whose parameter count is matched (at the same input size, classes and width).</summary>
    public required string Target { get; init; }
    public MatchBy By { get; init; } = MatchBy.Width;
}
