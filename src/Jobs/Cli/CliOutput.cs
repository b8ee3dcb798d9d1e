using System.Text.Json;
using Pipeline.Jobs.Engine;
using Pipeline.Stages;
using Pipeline.Jobs.Runs;

namespace Pipeline.Jobs.Cli;

/// <summary>How the CLI prints: tables for people, JSON (--json) for scripts; exit codes 0 ok, 1 run failed, 2 bad input.</summary>
public static class CliOutput
{
    public const int Ok = 0;
    public const int RunFailed = 1;
    public const int BadInput = 2;

    public static void Json<T>(T value) => Console.Out.WriteLine(JsonSerializer.Serialize(value, PipelineJson.Options));

    public static int Error(string message, int code = BadInput)
    {
        Console.Error.WriteLine(message);
        return code;
    }

    public static void PrintRun(RunDetail run)
    {
        Console.WriteLine($"run {run.Id} '{run.Name}'{(run.Preset is null ? "" : $" (preset {run.Preset})")}: {run.Status}");
        foreach (var s in run.Stages)
        {
            var deps = s.DependsOn.Count == 0 ? "" : $" <- {string.Join(", ", s.DependsOn)}";
            Console.WriteLine($"  stage {s.Id,-5} {s.Name,-20} {s.Kind,-10} {s.Status,-10} attempt {s.Attempt}  {s.Progress,4:P0}{deps}");
            if (s.Worker is not null && s.Status == RunStore.StageStatus.Running) Console.WriteLine($"        worker {s.Worker}");
            if (s.CachedFromStageId is not null) Console.WriteLine($"        reused outputs of stage {s.CachedFromStageId}");
            if (s.Error is not null) Console.WriteLine($"        error: {s.Error}");
            foreach (var a in s.Artifacts) Console.WriteLine($"        {a.Path}  {a.Bytes:N0} B  sha256 {a.Sha256[..16]}…");
        }
    }
}
