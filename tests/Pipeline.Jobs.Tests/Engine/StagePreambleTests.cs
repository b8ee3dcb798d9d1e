using System.Text.Json;
using Mediator;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Pipeline.Jobs.Hosting;
using Pipeline.Jobs.RunSpecs;
using Pipeline.Stages.Artifacts;
using Pipeline.Stages.Execution;

namespace Pipeline.Jobs.Tests.Engine;

/// <summary>The stage preamble: every stage kind's params are validated before its handler runs, in one place.</summary>
public sealed class StagePreambleTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("pipeline-preamble-").FullName;

    /// <summary>One invalid field per stage kind; a new kind must add its row (the test checks the catalogue).</summary>
    private static readonly Dictionary<string, (string Params, string Field)> Invalid = new()
    {
        ["probe"] = ("""{ "seconds": -1 }""", "params.seconds"),
        ["shard"] = ("""{ "seed": -1 }""", "params.seed"),
        ["train"] = ("""{ "threads": 0 }""", "params.threads"),
        ["virtual-monkey"] = ("""{ "threads": 0 }""", "params.threads"),
        ["neural-fit"] = ("""{ "device": "tpu" }""", "params.device"),
        ["timestep-sweep"] = ("""{ "max_steps": 0 }""", "params.max_steps"),
        ["leaderboard"] = ("""{ "top": 0 }""", "params.top"),
    };

    [Fact]
    public async Task Every_stage_kind_refuses_invalid_params_before_its_handler_runs_naming_kind_and_field()
    {
        // A search is run by the engine, not sent to a handler; its params are checked when the RunSpec is loaded.
        Assert.Equal(StageCatalog.All.Values.Where(k => !k.RunByEngine).Select(k => k.Kind).Order(), Invalid.Keys.Order());
        using var host = PipelineHost.Build(worker: false, new Dictionary<string, string?> { ["Pipeline:DataFolder"] = _folder });
        using var scope = host.Services.CreateScope();
        var mediator = scope.ServiceProvider.GetRequiredService<IMediator>();

        foreach (var (kindName, (json, field)) in Invalid)
        {
            var kind = StageCatalog.Get(kindName);
            var request = kind.CreateRequest(kind.DeserializeParams(JsonDocument.Parse(json).RootElement), Context(kindName));

            var e = await Assert.ThrowsAsync<StageInputException>(async () => await mediator.Send(request));

            Assert.StartsWith($"Invalid {kindName} params of stage '{kindName}-under-test': {field}: ", e.Message, StringComparison.Ordinal);
        }
    }

    private StageContext Context(string kind) => new()
    {
        RunId = 1,
        StageId = 1,
        StageName = $"{kind}-under-test",
        Attempt = 1,
        Store = new FileSystemArtifactStore(Path.Combine(_folder, "artifacts")),
        OutputFolder = $"runs/1/{kind}/",
        StateFolder = $"state/{kind}/",
        Inputs = new Dictionary<string, IReadOnlyList<ArtifactInfo>>(),
        Progress = NullStageProgress.Instance,
        Logger = NullLogger.Instance,
        ScratchFolder = _folder,
    };

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}
