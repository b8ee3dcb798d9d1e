using System.Text.Json;
using System.Text.Json.Nodes;
using Pipeline.Jobs.Configuration;
using Pipeline.Jobs.RunStore;
using Pipeline.Stages;
using Pipeline.Stages.Artifacts;
using Pipeline.Stages.NeuralFit;
using Pipeline.Stages.Sweeps;

namespace Pipeline.Jobs.Runs;

/// <summary>What a run produced, as a user opens it: each stage's headline figures and files on this machine.
/// <c>CopiedTo</c> is the local folder the results were copied into when the store is remote (null for the filesystem store).</summary>
public sealed record RunResultsView(long RunId, string Name, string? Preset, RunStatus Status, string StoreKind, string? CopiedTo, IReadOnlyList<StageResults> Stages)
{
    /// <summary>The leaderboards of the run's searches, by leaderboard stage name (read from their leaderboard.json).</summary>
    public IReadOnlyList<(string Stage, Leaderboard Board)> Leaderboards { get; init; } = [];
}

/// <summary>A stage of a compared run; <see cref="Label"/> names it in legends and tables.</summary>
public sealed record StageRef(long RunId, string RunName, string Stage)
{
    public string Label => $"#{RunId} {Stage}";
}

public sealed record SweepResult(StageRef Of, TimestepSweep Sweep);

/// <summary>A neural fit: the model it fitted (its spec name, e.g. <c>rgc-shallow</c>), per area the best layer and every layer's score, and the best layer over time.</summary>
public sealed record NeuralFitResult(StageRef Of, string? Model, IReadOnlyList<AreaBestLayer> Best, IReadOnlyList<TemporalProfile> Profiles);

public sealed record LeaderboardResult(StageRef Of, Leaderboard Board);

/// <summary>The structured results of compared runs (<see cref="RunResults.ComparedAsync"/>); <c>Unreadable</c> names a finished stage whose file could not be read.</summary>
public sealed record ComparedResults(IReadOnlyList<SweepResult> Sweeps, IReadOnlyList<NeuralFitResult> NeuralFits, IReadOnlyList<LeaderboardResult> Leaderboards,
    IReadOnlyList<string> Unreadable);

/// <summary>
/// One stage's results. <c>Files</c> are absolute local paths a user can open (figures and small result files);
/// <c>Folder</c> the local folder holding them; <c>Elsewhere</c> the stage's other artifacts — beside the files in
/// <c>Folder</c> on the filesystem store, still in the store otherwise (`pipeline artifacts get`); <c>Notes</c> what
/// could not be read or copied.
/// </summary>
public sealed record StageResults(string Stage, string Kind, StageStatus Status, string? Error, IReadOnlyList<Headline> Headlines,
    string? Folder, IReadOnlyList<string> Files, IReadOnlyList<ArtifactView> Elsewhere, IReadOnlyList<string> Notes);

/// <summary>
/// Finds a run's results on this machine: with the filesystem store the artifacts' own files; with a remote store (Azure
/// Blob) the figures and small result files are copied, sha256-verified, to <c>{data folder}/results/run-{id}/{stage}/</c>.
/// Also reads each stage's metrics.json for its <see cref="Headlines.Facts"/>.
/// </summary>
public sealed class RunResults(IArtifactStore store, PipelineMode mode)
{
    /// <summary>Result files up to this size are copied from a remote store; larger ones stay there.</summary>
    public const long SmallFileBytes = 4 * 1024 * 1024;

    public const string MetricsFile = "metrics.json";

    private static readonly HashSet<string> ResultExtensions = new(StringComparer.OrdinalIgnoreCase) { ".png", ".svg", ".csv", ".json", ".md", ".html", ".txt" };

    /// <summary>
    /// A figure or a small result a user opens: png, svg, csv, json, md, html or txt of at most <see cref="SmallFileBytes"/>,
    /// except the sidecar of another file (<c>model.safetensors.json</c> describes a checkpoint; it is not a result).
    /// </summary>
    public static bool IsResultFile(string path, long bytes)
    {
        var name = Path.GetFileName(path);
        if (bytes > SmallFileBytes || !ResultExtensions.Contains(Path.GetExtension(name))) return false;
        var inner = Path.GetExtension(Path.GetFileNameWithoutExtension(name));
        return inner.Length == 0 || ResultExtensions.Contains(inner);
    }

    /// <summary>The local folder a remote store's results of <paramref name="runId"/> are copied into.</summary>
    public string CopyFolder(long runId) => Path.Combine(mode.DataFolder, "results", $"run-{runId}");

    public async Task<RunResultsView> CollectAsync(RunDetail run, CancellationToken ct = default)
    {
        var local = store as FileSystemArtifactStore;
        var stages = new List<StageResults>();
        foreach (var stage in run.Stages)
        {
            stages.Add(local is not null ? await OnDiskAsync(local, stage, ct) : await CopiedAsync(run.Id, stage, ct));
        }
        var boards = new List<(string, Leaderboard)>();
        foreach (var stage in run.Stages.Where(s => s.Kind == "leaderboard" && StageStatuses.IsDone(s.Status)))
        {
            if (await LeaderboardAsync(stage, ct) is { } board) boards.Add((stage.Name, board));
        }
        return new RunResultsView(run.Id, run.Name, run.Preset, run.Status, store.Kind, local is null ? CopyFolder(run.Id) : null, stages) { Leaderboards = boards };
    }

    /// <summary>A leaderboard stage's leaderboard.json; null when it is missing or unreadable (the files are listed anyway).</summary>
    private Task<Leaderboard?> LeaderboardAsync(StageDetail stage, CancellationToken ct) => ReadOutputAsync<Leaderboard>(stage, LeaderboardHandler.JsonFile, ct);

    /// <summary>
    /// What the Compare page charts, read from the structured outputs of the runs' finished stages: the timestep sweeps,
    /// the neural fits (best layer per area with every layer's score, and the best layer's score over time) and the
    /// search leaderboards. A stage whose file is missing or unreadable is named in <see cref="ComparedResults.Unreadable"/>.
    /// </summary>
    public async Task<ComparedResults> ComparedAsync(IReadOnlyList<RunDetail> runs, CancellationToken ct = default)
    {
        var sweeps = new List<SweepResult>();
        var fits = new List<NeuralFitResult>();
        var boards = new List<LeaderboardResult>();
        var unreadable = new List<string>();
        foreach (var run in runs)
        {
            foreach (var stage in run.Stages.Where(s => StageStatuses.IsDone(s.Status)))
            {
                var of = new StageRef(run.Id, run.Name, stage.Name);
                switch (stage.Kind)
                {
                    case "timestep-sweep":
                        if (await ReadOutputAsync<TimestepSweep>(stage, TimestepSweepHandler.JsonFile, ct) is { } sweep) sweeps.Add(new(of, sweep));
                        else unreadable.Add($"{of.Label}: {TimestepSweepHandler.JsonFile}");
                        break;
                    case "neural-fit":
                        var best = await ReadOutputAsync<List<AreaBestLayer>>(stage, NeuralFitHandler.BestLayersFile, ct);
                        var profiles = await ReadOutputAsync<List<TemporalProfile>>(stage, NeuralFitHandler.ProfileFile, ct);
                        var model = (await FactsAsync(stage, ct))["model"]?.GetValue<string>();
                        if (best is not null && profiles is not null) fits.Add(new(of, model, best, profiles));
                        else unreadable.Add($"{of.Label}: {NeuralFitHandler.BestLayersFile} or {NeuralFitHandler.ProfileFile}");
                        break;
                    case "leaderboard":
                        if (await LeaderboardAsync(stage, ct) is { } board) boards.Add(new(of, board));
                        else unreadable.Add($"{of.Label}: {LeaderboardHandler.JsonFile}");
                        break;
                }
            }
        }
        return new ComparedResults(sweeps, fits, boards, unreadable);
    }

    /// <summary>One of the stage's JSON outputs (by its path in the stage folder); null when it is missing or unreadable.</summary>
    private async Task<T?> ReadOutputAsync<T>(StageDetail stage, string file, CancellationToken ct) where T : class
    {
        if (stage.Artifacts.FirstOrDefault(a => RelativeToStage(a.Path) == file) is not { } artifact) return null;
        try
        {
            await using var s = await store.OpenReadAsync(artifact.Path, artifact.Sha256, ct);
            return await JsonSerializer.DeserializeAsync<T>(s, PipelineJson.Options, ct);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return null;
        }
    }

    /// <summary>A stage's facts: its summary and, when it wrote one, its metrics.json (read from the store; unreadable → summary only).</summary>
    public async Task<JsonObject> FactsAsync(StageDetail stage, CancellationToken ct = default)
    {
        var metrics = MetricsArtifact(stage);
        JsonNode? parsed = null;
        if (metrics is not null)
        {
            try
            {
                await using var s = await store.OpenReadAsync(metrics.Path, metrics.Sha256, ct);
                parsed = await JsonNode.ParseAsync(s, cancellationToken: ct);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // A missing, corrupt or unreadable metrics.json leaves the summary's figures: results are printed anyway.
            }
        }
        return Headlines.Facts(stage.Summary, parsed);
    }

    private async Task<StageResults> OnDiskAsync(FileSystemArtifactStore local, StageDetail stage, CancellationToken ct)
    {
        var results = stage.Artifacts.Where(a => IsResultFile(a.Path, a.Bytes)).ToList();
        var files = results.Select(a => Path.GetFullPath(local.FullPath(a.Path))).ToList();
        var folder = stage.Artifacts.Count == 0 ? null : Path.GetDirectoryName(Path.GetFullPath(local.FullPath(StageFolderFile(stage.Artifacts[0].Path))));
        var facts = await FactsAsync(stage, ct);
        return new StageResults(stage.Name, stage.Kind, stage.Status, stage.Error, Headlines.Of(stage.Kind, facts), folder, files,
            [.. stage.Artifacts.Except(results)], []);
    }

    private async Task<StageResults> CopiedAsync(long runId, StageDetail stage, CancellationToken ct)
    {
        var folder = Path.Combine(CopyFolder(runId), stage.Name);
        var files = new List<string>();
        var notes = new List<string>();
        var elsewhere = new List<ArtifactView>();
        JsonNode? metrics = null;
        foreach (var a in stage.Artifacts)
        {
            if (!IsResultFile(a.Path, a.Bytes))
            {
                elsewhere.Add(a);
                continue;
            }
            var target = Path.Combine(folder, RelativeToStage(a.Path));
            try
            {
                await CopyAsync(a, target, ct);
                files.Add(target);
                if (Path.GetFileName(a.Path) == MetricsFile && MetricsArtifact(stage) == a) metrics = await ReadJsonOrNullAsync(target, ct);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                elsewhere.Add(a);
                notes.Add($"could not copy {a.Path}: {e.Message}");
            }
        }
        return new StageResults(stage.Name, stage.Kind, stage.Status, stage.Error, Headlines.Of(stage.Kind, Headlines.Facts(stage.Summary, metrics)),
            files.Count == 0 ? null : folder, files, elsewhere, notes);
    }

    /// <summary>Copies one artifact, verifying its sha256; a local copy with the recorded sha256 is kept as it is.</summary>
    private async Task CopyAsync(ArtifactView artifact, string target, CancellationToken ct)
    {
        if (File.Exists(target) && new FileInfo(target).Length == artifact.Bytes)
        {
            await using var existing = File.OpenRead(target);
            if (await Sha256Stream.HashAsync(existing, ct) == artifact.Sha256) return;
        }
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        await DownloadAsync(store, artifact.Path, artifact.Sha256, target, ct);
    }

    /// <summary>Downloads an artifact to <paramref name="target"/> (sha256 verified while reading) through a
    /// <c>.part</c> file, so a failed copy never leaves a half-written file under the target's name.</summary>
    public static async Task DownloadAsync(IArtifactStore store, string path, string sha256, string target, CancellationToken ct)
    {
        var temp = target + ".part";
        try
        {
            await using (var source = await store.OpenReadAsync(path, sha256, ct))
            await using (var file = File.Create(temp))
            {
                await source.CopyToAsync(file, ct);
            }
            File.Move(temp, target, overwrite: true);
        }
        finally
        {
            File.Delete(temp);
        }
    }

    private static async Task<JsonNode?> ReadJsonOrNullAsync(string path, CancellationToken ct)
    {
        try
        {
            await using var s = File.OpenRead(path);
            return await JsonNode.ParseAsync(s, cancellationToken: ct);
        }
        catch (System.Text.Json.JsonException)
        {
            return null;
        }
    }

    /// <summary>The stage's own metrics.json: the one at the top of its folder (not one of a nested output).</summary>
    private static ArtifactView? MetricsArtifact(StageDetail stage) =>
        stage.Artifacts.FirstOrDefault(a => RelativeToStage(a.Path) == MetricsFile);

    /// <summary>The artifact's path inside its stage folder (<c>runs/{runId}/{kind}-{key8}/</c>); the whole path when it is laid out otherwise.</summary>
    private static string RelativeToStage(string path)
    {
        var parts = path.Split('/');
        return parts.Length > 3 && parts[0] == "runs" ? string.Join('/', parts[3..]) : path;
    }

    // A file directly in the stage folder, whose directory is that folder.
    private static string StageFolderFile(string path)
    {
        var parts = path.Split('/');
        return parts.Length > 3 && parts[0] == "runs" ? string.Join('/', parts[..3]) + "/x" : path;
    }
}
