using TorchSharp;
using Pipeline.Stages.Models.Cells;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pipeline.Stages.Models;

/// <summary>
/// A convolutional recurrent network unrolled in time with biological unrolling (CONVRNN.md "Time"): at step t every
/// layer reads its predecessors' outputs from step t−1 — the previous layer's and, through feedback edges, later
/// layers' — and only the first layer reads the frame at t. The decoder is a node too: it reads the last layer's
/// output from t−1. Everything starts at zero. Feedforward specs (no cells, no feedback) use the same graph and also
/// run as a plain forward pass (<see cref="FeedForward"/>).
/// </summary>
public sealed class ConvRnnModel : nn.Module<Tensor, Tensor>, IVisionModel
{
    private readonly ConvRnnLayer[] _layers;
    private readonly nn.Module<Tensor, Tensor> decoder;
    private readonly int[][] _feedbackSources; // per layer: indices of layers feeding back into it
    private readonly long[] _inputSizes;        // per layer: spatial size of its input
    private readonly long[] _inputChannels;

    public ConvRnnModel(ModelSpec spec) : base(spec.Name)
    {
        Spec = spec;
        var names = spec.Layers.Select(l => l.Name).ToList();
        _feedbackSources = [.. spec.Layers.Select(l => spec.ActiveFeedback.Where(f => f.To == l.Name).Select(f => names.IndexOf(f.From)).Order().ToArray())];
        var outChannels = spec.Layers.Select(l => Scale(l.Out, spec.Width)).ToArray();

        _layers = new ConvRnnLayer[spec.Layers.Count];
        _inputSizes = new long[spec.Layers.Count];
        _inputChannels = new long[spec.Layers.Count];
        long size = spec.InputSize, channels = spec.InChannels;
        for (var i = 0; i < _layers.Length; i++)
        {
            var l = i == 0 && spec.Stem == StemKind.Small ? spec.Layers[0] with { Kernel = 3, Stride = 1 } : spec.Layers[i];
            var fbChannels = _feedbackSources[i].Sum(j => outChannels[j]);
            _inputSizes[i] = size;
            _inputChannels[i] = channels;
            _layers[i] = new ConvRnnLayer(l with { Cell = ScaleCell(l.Cell, spec.Width) }, channels, outChannels[i], fbChannels, spec.FeedbackConv, residualFits: l.Stride == 1);
            register_module(l.Name, _layers[i]);
            size = _layers[i].OutputSize(size);
            channels = outChannels[i];
        }
        LastSize = size;
        if (spec.Decoder.Kind == DecoderKind.Conv)
        {
            // The k×k VALID decoder shrinks to the last map when the input is small (it covers the whole map then).
            decoder = nn.Conv2d(channels, spec.Classes, Math.Min(spec.Decoder.Kernel, size));
        }
        else
        {
            decoder = nn.Linear(channels, spec.Classes);
        }
        RegisterComponents();
    }

    public ModelSpec Spec { get; }
    public nn.Module Module => this;
    public IReadOnlyList<string> LayerNames => [.. Spec.Layers.Select(l => l.Name)];
    public IReadOnlyList<ConvRnnLayer> Layers => _layers;
    public long LastSize { get; }
    public int MinimalSteps => MinimalUnroll.Steps(Spec);
    public int DefaultSteps => IsFeedforward ? 1 : Spec.MinimalUnroll ? MinimalSteps : Spec.Time.Steps;

    /// <summary>
    /// No cells and no feedback (BaseNet and its wider/deeper controls): an unrolled readout only repeats one plain
    /// forward pass, so such a model runs for one step by default — T times cheaper to train and evaluate. An explicit
    /// T above 1 still unrolls it biologically (features over time for neural fits).
    /// </summary>
    public bool IsFeedforward => !Spec.ActiveFeedback.Any() && Spec.Layers.All(l => (l.Cell?.Type ?? CellType.None) == CellType.None);

    /// <summary>The readout logits for a full unroll (T = <see cref="DefaultSteps"/>).</summary>
    public override Tensor forward(Tensor input) => Unroll(input).Readout;

    public UnrollResult Unroll(Tensor images, int? steps = null, FeatureTap? tap = null)
    {
        var t = steps ?? DefaultSteps;
        if (t == 1 && IsFeedforward)
        {
            var single = FeedForward(images, tap);
            return new UnrollResult([single], single, zeros(images.shape[0], dtype: int64, device: images.device));
        }
        var presentation = ImagePresentation.From(Spec.Time, t);
        var batch = images.shape[0];
        var outputs = new Tensor?[_layers.Length];   // outputs at t−1; null = still zero
        var states = _layers.Select((l, i) => l.ZeroState(batch, _inputSizes[i], images.device, images.dtype)).ToArray();
        var logits = new List<Tensor>(t);
        for (var step = 0; step < t; step++)
        {
            using var scope = NewDisposeScope();
            var next = new Tensor[_layers.Length];
            for (var i = 0; i < _layers.Length; i++)
            {
                var input = i == 0 ? presentation.Frame(images, step) : outputs[i - 1] ?? Zeros(batch, i);
                (next[i], var state) = _layers[i].Step(input, Feedback(i, outputs, batch), states[i]);
                foreach (var s in state) s.MoveToOuterDisposeScope();
                states[i] = state;
                tap?.Invoke(Spec.Layers[i].Name, step, next[i]);
            }
            var last = outputs[^1] ?? zeros(batch, _layers[^1].OutChannels, LastSize, LastSize, dtype: images.dtype, device: images.device);
            logits.Add(Decode(last).MoveToOuterDisposeScope());
            for (var i = 0; i < next.Length; i++) outputs[i] = next[i].MoveToOuterDisposeScope();
        }
        var (readout, readoutStep) = Readouts.Apply(Spec.Readout with { To = Math.Min(Spec.Readout.To ?? t, t) }, logits);
        return new UnrollResult(logits, readout, readoutStep);
    }

    /// <summary>A plain forward pass through the layers and the decoder (feedforward models; cells see zero state).</summary>
    public Tensor FeedForward(Tensor images, FeatureTap? tap = null)
    {
        var x = images;
        for (var i = 0; i < _layers.Length; i++)
        {
            (x, _) = _layers[i].Step(x, null, _layers[i].ZeroState(images.shape[0], _inputSizes[i], images.device, images.dtype));
            tap?.Invoke(Spec.Layers[i].Name, 0, x);
        }
        return Decode(x);
    }

    private Tensor Decode(Tensor last) => Spec.Decoder.Kind == DecoderKind.Conv
        ? decoder.call(last).mean([2, 3])
        : decoder.call(nn.functional.adaptive_avg_pool2d(last, 1).flatten(1));

    /// <summary>Outputs of later layers at t−1, resized (bilinear, align corners) to this layer's input size and
    /// concatenated in layer order; null when the layer has no feedback.</summary>
    private Tensor? Feedback(int layer, Tensor?[] outputs, long batch)
    {
        var sources = _feedbackSources[layer];
        if (sources.Length == 0) return null;
        var size = _inputSizes[layer];
        var parts = sources.Select(j => outputs[j] is { } o
            ? nn.functional.interpolate(o, size: [size, size], mode: InterpolationMode.Bilinear, align_corners: true)
            : zeros(batch, _layers[j].OutChannels, size, size, dtype: parameters().First().dtype, device: DeviceOf()));
        return cat([.. parts], 1);
    }

    private Tensor Zeros(long batch, int layer) =>
        zeros(batch, _inputChannels[layer], _inputSizes[layer], _inputSizes[layer], dtype: parameters().First().dtype, device: DeviceOf());

    private Device DeviceOf() => parameters().First().device;

    internal static long Scale(int channels, double width) => Math.Max(1, (long)Math.Round(channels * width));

    private static Cells.CellSpec? ScaleCell(Cells.CellSpec? cell, double width) =>
        cell?.Rgc?.CellDepth is { } depth && width != 1.0
            ? cell with { Rgc = cell.Rgc with { CellDepth = (int)Scale(depth, width) } }
            : cell;
}
