using Pipeline.Stages.Models.Cells;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pipeline.Stages.Models;

/// <summary>
/// One node of a ConvRNN (CONVRNN.md "Architectures"). <c>conv</c> layers: x = elu(conv(input)) → cell → pool.
/// <c>block</c> layers: elu(conv(input)) → cell → conv2 → + residual (proj when channels change) → elu → pool.
/// Long-range feedback (already resized and concatenated by the model) goes through this layer's own
/// <c>feedback</c> conv and is added at the input or handed to the cell at the output.
/// </summary>
public sealed class ConvRnnLayer : nn.Module
{
    // Field names are the state-dict keys: conv1.conv.weight, conv4.cell.…, conv5.feedback.weight.
    private readonly Conv2d conv;
    private readonly Conv2d? conv2;
    private readonly Conv2d? proj;
    private readonly RecurrentCell? cell;
    private readonly Conv2d? feedback;

    private readonly LayerSpec _spec;
    private readonly FeedbackConvSpec _feedbackSpec;
    private readonly bool _residualFits;

    public ConvRnnLayer(LayerSpec spec, long inChannels, long outChannels, long feedbackChannels, FeedbackConvSpec feedbackSpec, bool residualFits)
        : base(spec.Name)
    {
        _spec = spec;
        _feedbackSpec = feedbackSpec;
        _residualFits = residualFits;
        InChannels = inChannels;
        OutChannels = outChannels;
        conv = nn.Conv2d(inChannels, outChannels, spec.Kernel, stride: spec.Stride, padding: spec.Kernel / 2);
        if (spec.Kind == LayerKind.Block)
        {
            conv2 = nn.Conv2d(outChannels, outChannels, 3, padding: 1);
            if (inChannels != outChannels) proj = nn.Conv2d(inChannels, outChannels, 1);
        }
        // The cell's residual is the layer's input; it only fits when the conv keeps the spatial size.
        cell = CellFactory.Create("cell", spec.Cell ?? new CellSpec(), outChannels, outChannels, residualFits ? inChannels : 0);
        if (feedbackChannels > 0)
        {
            var target = feedbackSpec.Entry == FeedbackEntry.Input ? inChannels : outChannels;
            feedback = nn.Conv2d(feedbackChannels, target, feedbackSpec.Kernel, padding: feedbackSpec.Kernel / 2);
        }
        RegisterComponents();
    }

    public long InChannels { get; }
    public long OutChannels { get; }
    public bool HasCell => cell is not null;
    public bool HasFeedback => feedback is not null;
    public CellType CellType => cell is null ? CellType.None : (_spec.Cell?.Type ?? CellType.None);

    /// <summary>Spatial size of this layer's output for an input of size <paramref name="inputSize"/>.</summary>
    public long OutputSize(long inputSize)
    {
        var size = ((inputSize + 2 * (_spec.Kernel / 2) - _spec.Kernel) / _spec.Stride) + 1;
        return Pools(size) ? size / _spec.Pool : size;
    }

    // At small input sizes (Fashion-MNIST, tests) a map smaller than the pool window is passed on unpooled, so every
    // preset runs at every input size; at the paper's sizes every pool applies.
    private bool Pools(long size) => _spec.Pool >= 2 && size >= _spec.Pool;

    public Tensor[] ZeroState(long batch, long inputSize, Device device, ScalarType dtype)
    {
        if (cell is null) return [];
        var size = ((inputSize + 2 * (_spec.Kernel / 2) - _spec.Kernel) / _spec.Stride) + 1;
        return cell.ZeroState(batch, size, size, device, dtype);
    }

    /// <summary>One time step: this layer's input at t (its predecessor's output at t−1, or the frame) and the
    /// concatenated feedback (outputs of later layers at t−1, resized), with the cell state from t−1.</summary>
    public (Tensor Output, Tensor[] State) Step(Tensor input, Tensor? feedbackInput, Tensor[] state)
    {
        Tensor? fb = null;
        if (feedback is not null && feedbackInput is not null)
        {
            fb = feedback.call(feedbackInput);
            if (_feedbackSpec.Elu) fb = HeldScalars.Elu(fb);
        }
        var layerInput = fb is not null && _feedbackSpec.Entry == FeedbackEntry.Input ? HeldScalars.Add(input, fb) : input;
        var fbAtOut = _feedbackSpec.Entry == FeedbackEntry.Out ? fb : null;

        var x = HeldScalars.Elu(conv.call(layerInput));
        Tensor h;
        var newState = state;
        if (cell is not null)
        {
            (h, newState) = cell.Step(x, state, new CellExtras(_residualFits ? layerInput : null, fbAtOut));
        }
        else
        {
            h = fbAtOut is null ? x : HeldScalars.Add(x, fbAtOut);
        }
        if (conv2 is not null)
        {
            var shortcut = proj is null ? layerInput : proj.call(layerInput);
            h = HeldScalars.Elu(HeldScalars.Add(conv2.call(h), shortcut));
        }
        if (Pools(h.shape[2])) h = nn.functional.max_pool2d(h, _spec.Pool, _spec.Pool);
        return (h, newState);
    }
}
