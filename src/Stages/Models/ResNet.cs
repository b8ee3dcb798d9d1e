using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Pipeline.Stages.Models;

/// <summary>
/// A residual network in torchvision's layout (He et al. 2016; torchvision <c>resnet.py</c>): the field names are the
/// PyTorch attribute names, so state-dict keys equal torchvision's (<c>layer2.0.downsample.0.weight</c>,
/// <c>bn1.running_mean</c>, …) and weights move between the two through a checkpoint. It is the feedforward control of
/// CONVRNN.md ("Parameter counts": ResNet-18 11,689,512, ResNet-34 21,797,672 at 1000 classes).
/// </summary>
public sealed class ResNet : Module<Tensor, Tensor>
{
    /// <summary>The stages whose outputs <see cref="Features"/> taps, in order.</summary>
    public static readonly IReadOnlyList<string> FeatureLayers = ["layer1", "layer2", "layer3", "layer4"];

    // Field order is the state-dict order (torchvision's attribute order).
    private readonly Conv2d conv1;
    private readonly BatchNorm2d bn1;
    private readonly ReLU relu;
    private readonly MaxPool2d maxpool;
    private readonly Sequential layer1;
    private readonly Sequential layer2;
    private readonly Sequential layer3;
    private readonly Sequential layer4;
    private readonly AdaptiveAvgPool2d avgpool;
    private readonly Linear fc;

    public ResNetSpec Spec { get; }

    public ResNet(ResNetSpec spec) : base("ResNet")
    {
        spec.Validate();
        Spec = spec;
        var widths = spec.StageWidths();

        conv1 = spec.SmallStem
            ? Conv2d(spec.InChannels, widths[0], 3, stride: 1, padding: 1, bias: false)
            : Conv2d(spec.InChannels, widths[0], 7, stride: 2, padding: 3, bias: false);
        bn1 = BatchNorm2d(widths[0]);
        relu = ReLU(inplace: true);
        maxpool = MaxPool2d(3, stride: 2, padding: 1);
        layer1 = Stage(widths[0], widths[0], spec.Blocks[0], stride: 1);
        layer2 = Stage(widths[0], widths[1], spec.Blocks[1], stride: 2);
        layer3 = Stage(widths[1], widths[2], spec.Blocks[2], stride: 2);
        layer4 = Stage(widths[2], widths[3], spec.Blocks[3], stride: 2);
        avgpool = AdaptiveAvgPool2d(new long[] { 1, 1 });
        fc = Linear(widths[3], spec.Classes);

        RegisterComponents();
        InitialiseLikeTorchvision();
    }

    /// <summary>ResNet-18: two basic blocks per stage.</summary>
    public static ResNet ResNet18(int classes = 1000, double width = 1.0, int inChannels = 3) =>
        new(ResNetSpec.ResNet18 with { Classes = classes, Width = width, InChannels = inChannels });

    /// <summary>ResNet-34: 3, 4, 6, 3 basic blocks per stage.</summary>
    public static ResNet ResNet34(int classes = 1000, double width = 1.0, int inChannels = 3) =>
        new(ResNetSpec.ResNet34 with { Classes = classes, Width = width, InChannels = inChannels });

    /// <summary>Logits (batch, classes) for images (batch, channels, height, width) of any size ≥ 32 px or so.</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = Stem(x);
        h = layer4.call(layer3.call(layer2.call(layer1.call(h))));
        return fc.call(avgpool.call(h).flatten(1)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The outputs of layer1…layer4 (named as in <see cref="FeatureLayers"/>), for neural fitting. The caller owns
    /// the returned tensors.
    /// </summary>
    public IReadOnlyList<(string Layer, Tensor Output)> Features(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = Stem(x);
        var taps = new List<(string, Tensor)>(4);
        foreach (var (name, stage) in new[] { ("layer1", layer1), ("layer2", layer2), ("layer3", layer3), ("layer4", layer4) })
        {
            h = stage.call(h);
            taps.Add((name, h));
        }
        foreach (var (_, t) in taps) t.MoveToOuterDisposeScope();
        return taps;
    }

    private Tensor Stem(Tensor x)
    {
        var h = relu.call(bn1.call(conv1.call(x)));
        return Spec.SmallStem ? h : maxpool.call(h);
    }

    private static Sequential Stage(long inChannels, long outChannels, int blocks, long stride)
    {
        var list = new List<(string, Module<Tensor, Tensor>)>(blocks)
        {
            ("0", new BasicBlock(inChannels, outChannels, stride)),
        };
        for (var i = 1; i < blocks; i++) list.Add((i.ToString(System.Globalization.CultureInfo.InvariantCulture), new BasicBlock(outChannels, outChannels, 1)));
        return Sequential(list);
    }

    /// <summary>torchvision's init: Kaiming-normal convs (fan_out, ReLU gain), BN weight 1 and bias 0; the classifier keeps
    /// Linear's default (Kaiming-uniform with a = √5, as PyTorch's nn.Linear).</summary>
    private void InitialiseLikeTorchvision()
    {
        using var noGrad = no_grad();
        foreach (var (_, module) in named_modules())
        {
            switch (module)
            {
                case Conv2d conv:
                    init.kaiming_normal_(conv.weight!, mode: init.FanInOut.FanOut, nonlinearity: init.NonlinearityType.ReLU);
                    break;
                case BatchNorm2d bn:
                    init.ones_(bn.weight!);
                    init.zeros_(bn.bias!);
                    break;
            }
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            conv1.Dispose(); bn1.Dispose(); relu.Dispose(); maxpool.Dispose();
            layer1.Dispose(); layer2.Dispose(); layer3.Dispose(); layer4.Dispose();
            avgpool.Dispose(); fc.Dispose();
        }
        base.Dispose(disposing);
    }
}

/// <summary>
/// torchvision's BasicBlock: two 3×3 convs with batch norm, and a 1×1 conv + BN projection (<c>downsample</c>) on the
/// shortcut when the stride or the channel count changes.
/// </summary>
public sealed class BasicBlock : Module<Tensor, Tensor>
{
    private readonly Conv2d conv1;
    private readonly BatchNorm2d bn1;
    private readonly ReLU relu;
    private readonly Conv2d conv2;
    private readonly BatchNorm2d bn2;
    private readonly Sequential? downsample;

    public BasicBlock(long inChannels, long outChannels, long stride) : base("BasicBlock")
    {
        conv1 = Conv2d(inChannels, outChannels, 3, stride: stride, padding: 1, bias: false);
        bn1 = BatchNorm2d(outChannels);
        relu = ReLU(inplace: true);
        conv2 = Conv2d(outChannels, outChannels, 3, stride: 1, padding: 1, bias: false);
        bn2 = BatchNorm2d(outChannels);
        if (stride != 1 || inChannels != outChannels)
        {
            downsample = Sequential(
                ("0", Conv2d(inChannels, outChannels, 1, stride: stride, bias: false)),
                ("1", BatchNorm2d(outChannels)));
        }
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = relu.call(bn1.call(conv1.call(x)));
        h = bn2.call(conv2.call(h));
        var shortcut = downsample is null ? x : downsample.call(x);
        return relu.call(HeldScalars.AddInPlace(h, shortcut)).MoveToOuterDisposeScope();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            conv1.Dispose(); bn1.Dispose(); relu.Dispose(); conv2.Dispose(); bn2.Dispose();
            downsample?.Dispose();
        }
        base.Dispose(disposing);
    }
}
