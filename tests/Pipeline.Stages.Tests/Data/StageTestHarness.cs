using Microsoft.Extensions.Logging.Abstractions;
using Pipeline.Stages.Artifacts;
using Pipeline.Stages.Execution;

namespace Pipeline.Stages.Tests.Data;

/// <summary>A temp folder with a real filesystem artifact store, and real stage contexts writing into it.</summary>
public sealed class StageTestHarness : IDisposable
{
    private int _stages;

    public StageTestHarness()
    {
        Root = Path.Combine(Path.GetTempPath(), "pipeline-tests-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Root);
        Store = new FileSystemArtifactStore(Path.Combine(Root, "store"));
    }

    public string Root { get; }
    public FileSystemArtifactStore Store { get; }

    public string NewFolder(string name)
    {
        var path = Path.Combine(Root, name);
        Directory.CreateDirectory(path);
        return path;
    }

    public StageContext NewContext(IStageProgress? progress = null)
    {
        var n = Interlocked.Increment(ref _stages);
        return new StageContext
        {
            RunId = 1,
            StageId = n,
            StageName = "shard",
            Attempt = 1,
            Store = Store,
            OutputFolder = $"runs/1/shard-{n:D8}/",
            Inputs = new Dictionary<string, IReadOnlyList<ArtifactInfo>>(),
            Progress = progress ?? new RecordingProgress(),
            Logger = NullLogger.Instance,
            ScratchFolder = NewFolder($"scratch-{n}"),
        };
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

public sealed class RecordingProgress : IStageProgress
{
    public List<(double Fraction, string? Message)> Reports { get; } = [];
    public List<(string Name, double Value)> Metrics { get; } = [];

    public void Report(double fraction, string? message = null)
    {
        lock (Reports) Reports.Add((fraction, message));
    }

    public void Metric(string name, double value, long? step = null)
    {
        lock (Metrics) Metrics.Add((name, value));
    }
}
