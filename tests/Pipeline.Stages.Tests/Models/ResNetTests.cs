using Pipeline.Stages.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Pipeline.Stages.Tests.Models;

public class ResNetTests
{
    public ResNetTests()
    {
        torch.set_num_threads(1);
        torch.manual_seed(7);
    }

    private static long ParameterCount(nn.Module m) => m.parameters().Sum(p => p.numel());

    [Fact]
    public void ResNet18_has_torchvisions_parameter_count()
    {
        using var m = ResNet.ResNet18();
        Assert.Equal(11_689_512, ParameterCount(m));
    }

    [Fact]
    public void ResNet34_has_torchvisions_parameter_count()
    {
        using var m = ResNet.ResNet34();
        Assert.Equal(21_797_672, ParameterCount(m));
    }

    [Theory]
    [InlineData(224)]
    [InlineData(64)]
    [InlineData(32)]
    public void Logits_have_shape_batch_by_classes_at_any_input_size(int size)
    {
        using var m = ResNet.ResNet18(classes: 10, width: 0.25);
        m.eval();
        using var scope = torch.NewDisposeScope();
        var y = m.forward(torch.randn(2, 3, size, size));
        Assert.Equal(new long[] { 2, 10 }, y.shape);
        Assert.True(y.isfinite().all().ToBoolean());
    }

    [Fact]
    public void Full_width_ResNet18_gives_1000_logits_at_224_px()
    {
        using var m = ResNet.ResNet18();
        m.eval();
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        Assert.Equal(new long[] { 1, 1000 }, m.forward(torch.randn(1, 3, 224, 224)).shape);
    }

    [Fact]
    public void State_dict_keys_are_torchvisions()
    {
        using var m = ResNet.ResNet18();
        var sd = m.state_dict();
        var keys = sd.Keys.ToList();
        foreach (var key in new[]
                 {
                     "conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked",
                     "layer1.0.conv1.weight", "layer1.1.bn2.running_var", "layer2.0.downsample.0.weight",
                     "layer2.0.downsample.1.running_mean", "layer4.1.conv2.weight", "fc.weight", "fc.bias",
                 })
        {
            Assert.Contains(key, keys);
        }
        Assert.DoesNotContain("layer1.0.downsample.0.weight", keys);
        Assert.DoesNotContain("layer2.1.downsample.0.weight", keys);
        // torchvision's resnet18().state_dict() holds 122 entries: 62 parameters and 60 BN buffers.
        Assert.Equal(122, keys.Count);
        // TorchSharp lists all parameters before all buffers (PyTorch interleaves them per module); only the names
        // matter for a checkpoint, whose header is sorted by key.
        Assert.Equal("conv1.weight", keys[0]);
        Assert.Equal(new long[] { 128, 64, 1, 1 }, sd["layer2.0.downsample.0.weight"].shape);
        Assert.Equal(ScalarType.Int64, sd["bn1.num_batches_tracked"].dtype);
    }

    [Fact]
    public void Half_width_has_fewer_parameters_and_rounded_channels()
    {
        using var full = ResNet.ResNet18(classes: 10);
        using var half = ResNet.ResNet18(classes: 10, width: 0.5);
        Assert.True(ParameterCount(half) < ParameterCount(full) / 3);
        Assert.Equal(new long[] { 32, 64, 128, 256 }, half.Spec.StageWidths());
        Assert.Equal(new long[] { 1, 1, 1, 1 }, (ResNetSpec.ResNet18 with { Width = 0.001 }).StageWidths());
        Assert.Equal(new long[] { 10, 256 }, half.state_dict()["fc.weight"].shape);
    }

    [Fact]
    public void Init_is_kaiming_normal_fan_out_and_unit_batch_norm()
    {
        using var m = ResNet.ResNet18();
        var sd = m.state_dict();
        // fan_out of layer4 convs = 512·3·3 → std = √(2/4608) ≈ 0.0208.
        var std = sd["layer4.1.conv2.weight"].std().ToDouble();
        Assert.InRange(std, 0.0208 * 0.98, 0.0208 * 1.02);
        Assert.Equal(1.0, sd["layer3.0.bn2.weight"].min().ToDouble());
        Assert.Equal(0.0, sd["layer3.0.bn2.bias"].abs().max().ToDouble());
    }

    [Fact]
    public void Features_taps_the_four_stages_in_order()
    {
        using var m = ResNet.ResNet18(classes: 10, width: 0.25, inChannels: 1);
        m.eval();
        using var scope = torch.NewDisposeScope();
        var taps = m.Features(torch.randn(2, 1, 64, 64));
        Assert.Equal(ResNet.FeatureLayers, taps.Select(t => t.Layer).ToArray());
        Assert.Equal(new long[] { 2, 16, 16, 16 }, taps[0].Output.shape);
        Assert.Equal(new long[] { 2, 32, 8, 8 }, taps[1].Output.shape);
        Assert.Equal(new long[] { 2, 64, 4, 4 }, taps[2].Output.shape);
        Assert.Equal(new long[] { 2, 128, 2, 2 }, taps[3].Output.shape);
    }

    [Fact]
    public void A_training_step_backpropagates_through_the_in_place_residual_adds()
    {
        using var m = ResNet.ResNet18(classes: 5, width: 0.125);
        m.train();
        using var opt = torch.optim.SGD(m.parameters(), learningRate: 0.1);
        using var scope = torch.NewDisposeScope();
        var x = torch.randn(4, 3, 32, 32);
        var labels = torch.tensor(new long[] { 0, 1, 2, 3 });
        var before = m.state_dict()["conv1.weight"].clone();
        opt.zero_grad();
        var loss = nn.functional.cross_entropy(m.forward(x), labels);
        loss.backward();
        opt.step();
        Assert.True(float.IsFinite(loss.ToSingle()));
        Assert.False(before.Equals(m.state_dict()["conv1.weight"]));
    }

    [Fact]
    public void Spec_round_trips_through_pipeline_json()
    {
        var spec = ResNetSpec.ResNet34 with { Classes = 10, Width = 0.5, InChannels = 1 };
        var json = System.Text.Json.JsonSerializer.Serialize(spec, PipelineJson.Options);
        Assert.Contains("\"in_channels\": 1", json);
        var back = System.Text.Json.JsonSerializer.Deserialize<ResNetSpec>(json, PipelineJson.Options)!;
        Assert.Equal(spec.Blocks, back.Blocks);
        using var a = new ResNet(spec);
        using var b = new ResNet(back);
        Assert.Equal(ParameterCount(a), ParameterCount(b));
    }

    [Fact]
    public void A_spec_with_three_stages_is_rejected()
    {
        var ex = Assert.Throws<ArgumentException>(() => new ResNet(new ResNetSpec { Blocks = [2, 2, 2] }));
        Assert.Contains("4 stages", ex.Message);
    }
}
