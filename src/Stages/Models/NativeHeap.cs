using System.Runtime.InteropServices;

namespace Pipeline.Stages.Models;

/// <summary>
/// glibc keeps freed blocks of libtorch's many short-lived tensors in its arenas, so an unrolled model's resident
/// memory creeps upward even when no tensor leaks (TORCHSHARP.md "Memory"). Returning them after each training step
/// keeps it flat; MALLOC_MMAP_THRESHOLD_ also works but halved the speed. No .NET API does this, hence P/Invoke.
/// </summary>
public static partial class NativeHeap
{
    [LibraryImport("libc", EntryPoint = "malloc_trim")]
    private static partial int MallocTrim(nuint pad);

    /// <summary>Returns free heap memory to the OS (Linux/glibc); a no-op elsewhere.</summary>
    public static void Trim()
    {
        // The result only says whether memory was released; there is nothing to do either way.
        if (OperatingSystem.IsLinux()) _ = MallocTrim(0);
    }
}
