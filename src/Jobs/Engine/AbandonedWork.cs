using System.Runtime.InteropServices;

namespace Pipeline.Jobs.Engine;

/// <summary>
/// Stage handlers a stopping worker had to leave running (still inside one native call when the shutdown grace period
/// ended; their stages were handed back). Such a process must not run libtorch's exit-time destructors under a call
/// that is still using them: that ends in a segmentation fault (exit 139) instead of the documented exit code.
/// </summary>
public static partial class AbandonedWork
{
    private static int _count;

    public static void Add() => Interlocked.Increment(ref _count);

    /// <summary>
    /// Returns <paramref name="exitCode"/>, or — when work was abandoned — ends the process right here with it, skipping
    /// the C runtime's exit handlers (_exit(2)). .NET has no managed way to exit without them; logs are flushed first.
    /// </summary>
    public static int Exit(int exitCode)
    {
        if (Volatile.Read(ref _count) == 0) return exitCode;
        Serilog.Log.CloseAndFlush();
        Console.Out.Flush();
        Console.Error.Flush();
        ExitImmediately(exitCode);
        return exitCode;
    }

    [LibraryImport("libc", EntryPoint = "_exit")]
    private static partial void ExitImmediately(int status);
}
