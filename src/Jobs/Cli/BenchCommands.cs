using System.CommandLine;

namespace Pipeline.Jobs.Cli;

/// <summary>`pipeline bench …`: measurements printed on this machine (bench/README.md records them).</summary>
public static class BenchCommands
{
    public static Command Build()
    {
        var cmd = new Command("bench", "Measure throughput on this machine");
        return cmd;
    }
}
