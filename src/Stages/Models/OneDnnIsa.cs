using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Pipeline.Stages.Models;

/// <summary>
/// Caps oneDNN (libtorch's CPU convolution library) at AVX2 unless the user chose otherwise. On this project's build
/// machines (AMD EPYC with AVX-512) its AVX-512 kernels intermittently returned NaN from finite weights and inputs:
/// basenet-wide lost its loss to NaN at a random step in about half of its runs, and the same forward pass repeated on
/// the same batch came out finite. Capped at AVX2, no run did (bench/README.md). Set <c>ONEDNN_MAX_CPU_ISA</c>
/// yourself (e.g. <c>ALL</c>) to lift the cap.
/// </summary>
/// <remarks>
/// oneDNN reads the variable from the native environment when it first picks kernels; .NET's
/// <see cref="Environment.SetEnvironmentVariable(string, string)"/> does not reach that environment on Linux, hence
/// <c>setenv</c>. It runs as a module initializer so that it precedes every model this assembly builds.
/// </remarks>
public static partial class OneDnnIsa
{
    public const string Variable = "ONEDNN_MAX_CPU_ISA";
    public const string Default = "AVX2";

    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SetEnv(string name, string value, int overwrite);

#pragma warning disable CA2255 // A library module initializer is the point: it must run before libtorch picks its kernels.
    [ModuleInitializer]
#pragma warning restore CA2255
    public static void Cap()
    {
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable(Variable) is not null) return;
        if (SetEnv(Variable, Default, overwrite: 0) == 0) Environment.SetEnvironmentVariable(Variable, Default);
    }
}
