using TorchSharp;
using static TorchSharp.torch;

namespace Pipeline.Stages.Tests;

public class TorchLoadsTests
{
    [Fact]
    public void Libtorch_runs_a_conv_forward_on_this_machine()
    {
        torch.set_num_threads(1);
        torch.manual_seed(1);
        using var conv = nn.Conv2d(3, 8, 3, padding: 1);
        using var x = torch.ones(2, 3, 16, 16);
        using var y = conv.forward(x);
        Assert.Equal(new long[] { 2, 8, 16, 16 }, y.shape);
        Assert.True(float.IsFinite(y.sum().ToSingle()));
    }
}
