using TorchSharp;
using static TorchSharp.torch;

namespace Pipeline.Stages.Models;

/// <summary>Where models run: "auto" (CUDA when libtorch sees a GPU, else CPU), "cpu", "cuda" or "cuda:N".</summary>
public static class ComputeDevice
{
    public static Device Resolve(string? name)
    {
        var requested = string.IsNullOrWhiteSpace(name) ? "auto" : name.Trim().ToLowerInvariant();
        if (requested == "auto") return cuda.is_available() ? CUDA : CPU;
        if (requested.StartsWith("cuda", StringComparison.Ordinal) && !cuda.is_available())
        {
            throw new ArgumentException($"device '{name}' was requested but libtorch sees no CUDA device (this build uses the CPU libtorch package); use 'cpu' or 'auto'.");
        }
        try
        {
            return torch.device(requested);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"device '{name}' is not a device; use auto, cpu, cuda or cuda:N ({e.Message}).", e);
        }
    }
}
