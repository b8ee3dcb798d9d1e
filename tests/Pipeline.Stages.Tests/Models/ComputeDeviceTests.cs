using Pipeline.Stages.Models;
using TorchSharp;

namespace Pipeline.Stages.Tests.Models;

public class ComputeDeviceTests
{
    [Fact]
    public void Auto_picks_cuda_when_present_and_the_cpu_otherwise()
    {
        var device = ComputeDevice.Resolve("auto");

        Assert.Equal(torch.cuda.is_available() ? DeviceType.CUDA : DeviceType.CPU, device.type);
        Assert.Equal(DeviceType.CPU, ComputeDevice.Resolve("cpu").type);
    }

    [Fact]
    public void An_unavailable_or_unknown_device_is_a_clear_error()
    {
        if (!torch.cuda.is_available())
        {
            Assert.Contains("no CUDA device", Assert.Throws<ArgumentException>(() => ComputeDevice.Resolve("cuda")).Message, StringComparison.Ordinal);
        }
        Assert.Contains("not a device", Assert.Throws<ArgumentException>(() => ComputeDevice.Resolve("gpu")).Message, StringComparison.Ordinal);
    }
}
