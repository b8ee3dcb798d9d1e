using Pipeline.Stages.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pipeline.Stages.Models.Cells;

/// <summary>The convolutions and norms the cells are built from.</summary>
internal static class CellLayers
{
    /// <summary>
    /// A stride-1 convolution whose output has the input's spatial size. libtorch's <c>padding="same"</c> pads an even
    /// kernel asymmetrically, one more row/column at the bottom/right (total k−1, left ⌊(k−1)/2⌋), which is exactly
    /// TensorFlow's "SAME" rule used by the reference models (e.g. the median RGC's 2×2 input→cell conv, the LSTM's
    /// 2×2/4×4 kernels); <c>CellLayersTests</c> pins this against an explicit pad + VALID conv. Biases start at zero,
    /// as with the reference's <c>tf.zeros_initializer</c>; weights keep PyTorch's default (Kaiming-uniform, a = √5).
    /// </summary>
    public static Conv2d SameConv(long inChannels, long outChannels, long kernel, bool bias = true, long groups = 1)
    {
        var conv = nn.Conv2d(inChannels, outChannels, kernel, padding: Padding.Same, groups: groups, bias: bias);
        if (conv.bias is { } b)
        {
            using var _ = torch.no_grad();
            b.zero_();
        }
        return conv;
    }

    /// <summary>
    /// A plain k×k conv, or a depthwise-separable one: depthwise k×k (groups = channels, no bias) then pointwise 1×1
    /// (the reference's <c>_ds_conv</c>: channel multiplier 1, bias after the pointwise conv). State-dict keys:
    /// <c>weight</c>/<c>bias</c>, or <c>depthwise.weight</c>, <c>pointwise.weight</c>/<c>pointwise.bias</c>.
    /// </summary>
    public static nn.Module<Tensor, Tensor> Conv(long inChannels, long outChannels, long kernel, bool separable, bool bias = true) =>
        separable
            ? nn.Sequential(
                ("depthwise", SameConv(inChannels, inChannels, kernel, bias: false, groups: inChannels)),
                ("pointwise", SameConv(inChannels, outChannels, 1, bias)))
            : SameConv(inChannels, outChannels, kernel, bias);

    /// <summary>A parameter that outlives the dispose scope its module happens to be built in (a Parameter made from a
    /// tensor joins the current scope and would be disposed with it).</summary>
    public static Parameter NewParameter(Tensor init)
    {
        var p = nn.Parameter(init);
        p.DetachFromDisposeScope();
        return p;
    }

    public static Tensor Apply(this GateActivation f, Tensor pre) =>
        f == GateActivation.Sigmoid ? pre.sigmoid() : pre.tanh();

    public static void RequirePositive(long value, string field)
    {
        if (value < 1)
            throw new ArgumentException($"{field} must be at least 1 (got {value}).", field);
    }
}

/// <summary>
/// Layer norm as the reference cells use it (<c>tf.contrib.layers.layer_norm</c> on NHWC: statistics over all of
/// C×H×W of each sample, a learned gain and shift per channel). <paramref name="groups"/> equal blocks of channels are
/// normalised separately, so one call normalises all four LSTM gates, each over its own C×H×W. Per-channel affine
/// parameters keep the module independent of the spatial size. ε = 1e-5 (PyTorch's default; TF used 1e-12).
/// </summary>
internal sealed class GroupedLayerNorm : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly Parameter bias;
    private readonly long groups;

    public GroupedLayerNorm(long channels, long groups, string name = "layer_norm") : base(name)
    {
        if (channels % groups != 0)
            throw new ArgumentException($"channels ({channels}) must be a multiple of groups ({groups}).", nameof(groups));
        this.groups = groups;
        weight = CellLayers.NewParameter(torch.ones(channels, 1, 1));
        bias = CellLayers.NewParameter(torch.zeros(channels, 1, 1));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        var blocks = x.reshape(x.shape[0], groups, -1);
        var normed = nn.functional.layer_norm(blocks, new[] { blocks.shape[2] }, null, null, 1e-5).view(x.shape);
        return HeldScalars.AddProduct(bias, normed, weight).MoveToOuterDisposeScope();
    }
}
