using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Pipeline.Bench.WebLoad;

/// <summary>What the report says about the machine: cores, CPU model and its AVX-512 extensions, OS, runtime, load.</summary>
public static class Machine
{
    public static string Describe()
    {
        var cpuinfo = File.Exists("/proc/cpuinfo") ? File.ReadAllLines("/proc/cpuinfo") : [];
        var model = cpuinfo.FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown CPU";
        var avx512 = cpuinfo.FirstOrDefault(l => l.StartsWith("flags", StringComparison.Ordinal))?.Split(':', 2)[1]
            .Split(' ', StringSplitOptions.RemoveEmptyEntries).Where(f => f.StartsWith("avx512", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList() ?? [];
        return $"{Environment.ProcessorCount} cores, {model} ({(avx512.Count > 0 ? string.Join(' ', avx512) : "no AVX-512")}), {RuntimeInformation.OSDescription}, .NET {Environment.Version}";
    }

    /// <summary>The 1, 5 and 15 minute load averages.</summary>
    public static string LoadAverage() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "unknown";

    /// <summary>The CPU time (user + system) a process has used so far.</summary>
    public static TimeSpan CpuTime(int processId)
    {
        using var process = Process.GetProcessById(processId);
        return process.TotalProcessorTime;
    }
}
