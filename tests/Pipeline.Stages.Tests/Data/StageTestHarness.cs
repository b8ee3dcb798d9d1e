using Microsoft.Extensions.Logging;
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

    /// <summary>Runs a handler the way the engine does: through the stage preamble (params validated, torch stages on a
    /// thread of their own with their thread count).</summary>
    public static ValueTask<StageResult> RunAsync<TRequest>(Mediator.IRequestHandler<TRequest, StageResult> handler, TRequest request, CancellationToken ct = default)
        where TRequest : IStageRequest<IStageParams>, Mediator.IRequest<StageResult> =>
        StagePreamble.RunAsync(request, () => handler.Handle(request, ct));

    public string Root { get; }
    public FileSystemArtifactStore Store { get; }

    public string NewFolder(string name)
    {
        var path = Path.Combine(Root, name);
        Directory.CreateDirectory(path);
        return path;
    }

    /// <param name="outputFolder">Reuse another context's folder (and with it its resumable state) to play a later attempt of the same stage.</param>
    /// <param name="logger">Where the stage logs (a recording logger, to assert on warnings); none by default.</param>
    /// <param name="pruning">The search port of a trial whose search prunes; none by default.</param>
    public StageContext NewContext(IStageProgress? progress = null, IReadOnlyDictionary<string, IReadOnlyList<ArtifactInfo>>? inputs = null,
        string? outputFolder = null, string stageName = "shard", ILogger? logger = null, ITrialPruning? pruning = null)
    {
        var n = Interlocked.Increment(ref _stages);
        var folder = outputFolder ?? $"runs/1/{stageName}-{n:D8}/";
        return new StageContext
        {
            RunId = 1,
            StageId = n,
            StageName = stageName,
            Attempt = 1,
            Store = Store,
            OutputFolder = folder,
            StateFolder = $"state/{folder}",
            Inputs = inputs ?? new Dictionary<string, IReadOnlyList<ArtifactInfo>>(),
            Progress = progress ?? new RecordingProgress(),
            Logger = logger ?? NullLogger.Instance,
            ScratchFolder = NewFolder($"scratch-{n}"),
            Pruning = pruning,
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

    /// <summary>Called after each report (e.g. to cancel a stage at a given point).</summary>
    public Action<double, string?>? OnReport { get; init; }

    public void Report(double fraction, string? message = null)
    {
        lock (Reports) Reports.Add((fraction, message));
        OnReport?.Invoke(fraction, message);
    }

    public void Metric(string name, double value, long? step = null)
    {
        lock (Metrics) Metrics.Add((name, value));
    }
}
