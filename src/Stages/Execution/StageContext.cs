using System.Text.Json;
using Microsoft.Extensions.Logging;
using Pipeline.Stages.Artifacts;

namespace Pipeline.Stages.Execution;

/// <summary>
/// Everything a stage handler may touch outside its parameters: its identity, its inputs (the artifacts of the stages
/// it depends on, by stage name), the artifact store, its output and state folders, progress, and a logger — and the
/// helpers every handler uses for them (input lookup, downloads to scratch, JSON outputs), written once here.
/// </summary>
public sealed class StageContext
{
    private readonly List<ArtifactInfo> _outputs = [];

    public required long RunId { get; init; }
    public required long StageId { get; init; }
    public required string StageName { get; init; }
    public required int Attempt { get; init; }
    public required IArtifactStore Store { get; init; }

    /// <summary>Store-relative folder the stage's outputs go to, ending in '/'.</summary>
    public required string OutputFolder { get; init; }

    /// <summary>
    /// Store-relative folder, ending in '/', for state a later attempt may resume from (training checkpoints). It is
    /// keyed by the stage's content key, not by run: any run of the same stage (same kind, params and inputs) resumes
    /// from it. The engine lets one attempt per content key run at a time, so it has a single writer.
    /// </summary>
    public required string StateFolder { get; init; }

    public required IReadOnlyDictionary<string, IReadOnlyList<ArtifactInfo>> Inputs { get; init; }
    public required IStageProgress Progress { get; init; }
    public required ILogger Logger { get; init; }

    /// <summary>Set when the stage is a trial of a search that prunes: where it reports at rungs (<see cref="ITrialPruning"/>).</summary>
    public ITrialPruning? Pruning { get; init; }

    /// <summary>Local scratch folder for this attempt; the engine deletes it afterwards.</summary>
    public required string ScratchFolder { get; init; }

    public IReadOnlyList<ArtifactInfo> Outputs
    {
        get { lock (_outputs) return _outputs.ToList(); }
    }

    /// <summary>Writes one output file (atomically, see <see cref="IArtifactStore.PutAsync"/>) and records it.</summary>
    public async Task<ArtifactInfo> WriteOutputAsync(string fileName, Stream content, CancellationToken ct)
    {
        var info = await Store.PutAsync(ArtifactPaths.Check(OutputFolder + fileName), content, ArtifactPaths.MediaTypeFor(fileName), ct);
        lock (_outputs)
        {
            _outputs.RemoveAll(a => a.Path == info.Path);
            _outputs.Add(info);
        }
        return info;
    }

    /// <summary>Writes <paramref name="value"/> as an indented JSON output with the project's one convention (<see cref="PipelineJson"/>).</summary>
    public async Task<ArtifactInfo> WriteJsonAsync<T>(string fileName, T value, CancellationToken ct)
    {
        using var bytes = new MemoryStream(JsonSerializer.SerializeToUtf8Bytes(value, Indented), writable: false);
        return await WriteOutputAsync(fileName, bytes, ct);
    }

    private static readonly JsonSerializerOptions Indented = new(PipelineJson.Options) { WriteIndented = true };

    /// <summary>The single input artifact named <paramref name="fileName"/> among all inputs, or a clear error.</summary>
    public ArtifactInfo RequireInput(string fileName) =>
        FindInput(fileName) ?? throw new StageInputException(
            $"Stage '{StageName}' needs an input '{fileName}', but none of its dependencies ({string.Join(", ", Inputs.Keys)}) produced one. Add a dependency on a stage that writes it.");

    /// <summary>The single input artifact named <paramref name="fileName"/>, null when no dependency wrote one; several are an error.</summary>
    public ArtifactInfo? FindInput(string fileName)
    {
        var matches = Inputs.Values.SelectMany(a => a).Where(a => a.Path.EndsWith("/" + fileName, StringComparison.Ordinal)).ToList();
        return matches.Count switch
        {
            0 => null,
            1 => matches[0],
            _ => throw new StageInputException($"Stage '{StageName}' found {matches.Count} inputs named '{fileName}' ({string.Join(", ", matches.Select(m => m.Path))}); depend on only one stage that writes it."),
        };
    }

    /// <summary>The artifacts of the dependency named <paramref name="dependency"/> (the stage name in the RunSpec), or a clear error.</summary>
    public IReadOnlyList<ArtifactInfo> InputsOf(string dependency) =>
        Inputs.TryGetValue(dependency, out var artifacts) ? artifacts
            : throw new StageInputException($"Stage '{StageName}' has no dependency '{dependency}'; its dependencies are: {string.Join(", ", Inputs.Keys)}.");

    /// <summary>
    /// Copies an input into <paramref name="folder"/> under the scratch folder (sha256 verified while reading) and
    /// returns the local path; the file keeps its name.
    /// </summary>
    public async Task<string> DownloadInputAsync(ArtifactInfo input, string folder, CancellationToken ct)
    {
        var local = Path.Combine(Directory.CreateDirectory(Path.Combine(ScratchFolder, folder)).FullName, input.Path[(input.Path.LastIndexOf('/') + 1)..]);
        await using var source = await Store.OpenReadAsync(input.Path, input.Sha256, ct);
        await using var file = File.Create(local);
        await source.CopyToAsync(file, ct);
        return local;
    }
}
