using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Pipeline.Stages.Artifacts;
using Pipeline.Stages.Models.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Pipeline.Stages.Training;

/// <summary>
/// Training checkpoints in an artifact store, one folder per checkpoint (<c>{folder}step-{Step:D10}/</c>) holding
/// <c>model.safetensors</c> (+ its spec sidecar), <c>optimizer.bin</c>, <c>rng.bin</c> and, written last,
/// <c>checkpoint.json</c>: the commit marker that lists every other file with its sha256 and size. A folder without
/// the marker is an interrupted save and never loaded. Keeps the newest <c>keep</c> checkpoints.
/// </summary>
/// <remarks>
/// Call <see cref="SaveAsync"/> and <see cref="LoadNewestAsync"/> outside any <c>torch.NewDisposeScope()</c>: loading
/// creates optimizer state tensors (SGD's momentum buffers) that a surrounding scope would dispose when it ends.
/// </remarks>
public sealed class CheckpointManager
{
    public const int FormatVersion = 2;
    public const string MarkerFile = "checkpoint.json";
    public const string ModelFile = "model.safetensors";
    public const string OptimizerFile = "optimizer.safetensors";
    public const string RngFile = "rng.bin";

    private const string FolderPrefix = "step-";
    private const int StepDigits = 10;

    private readonly IArtifactStore _store;
    private readonly string _folder;
    private readonly string _scratch;
    private readonly int _keep;
    private readonly ILogger _logger;

    /// <param name="store">Where checkpoints live.</param>
    /// <param name="folder">Store folder ending in '/', e.g. "{stage output folder}checkpoints/".</param>
    /// <param name="scratchFolder">A local folder for files on their way to or from the store.</param>
    /// <param name="keep">How many complete checkpoints to keep (at least 1).</param>
    /// <param name="logger">Receives the warnings about checkpoints that were skipped or deleted.</param>
    public CheckpointManager(IArtifactStore store, string folder, string scratchFolder, int keep, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(logger);
        ArgumentException.ThrowIfNullOrWhiteSpace(scratchFolder);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(keep);
        if (folder is null || !folder.EndsWith('/'))
            throw new ArgumentException($"The checkpoint folder '{folder}' must be a store folder ending in '/'.", nameof(folder));
        ArtifactPaths.Check(folder + MarkerFile);
        _store = store;
        _folder = folder;
        _scratch = Path.GetFullPath(scratchFolder);
        _keep = keep;
        _logger = logger;
    }

    /// <summary>The store folder of the checkpoint at <paramref name="step"/>.</summary>
    public string FolderFor(long step) => $"{_folder}{FolderPrefix}{step.ToString($"D{StepDigits}", CultureInfo.InvariantCulture)}/";

    /// <summary>
    /// Saves model, optimizer, torch RNG state and <paramref name="state"/> as the checkpoint at
    /// <paramref name="position"/>, then prunes. Await it before the next training step: the tensors are read while it runs.
    /// </summary>
    public async Task<TrainingCheckpoint> SaveAsync(
        nn.Module model, TrainingOptimizer optimizer, JsonNode modelSpec, TrainingPosition position, JsonObject state, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(modelSpec);
        ArgumentNullException.ThrowIfNull(position);
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentOutOfRangeException.ThrowIfNegative(position.Step);

        var dir = FolderFor(position.Step);
        // A second save at the same step (epoch end and the timer together) replaces the first. The marker goes first,
        // so the folder never looks intact while its files are a mix of the two saves.
        await _store.DeleteAsync(dir + MarkerFile, ct);

        // Captured before anything else so it is the state the next training step will start from.
        var rng = RngState();
        await ModelCheckpoint.SaveAsync(_store, dir + ModelFile, model, modelSpec, ct);
        await PutOptimizerAsync(optimizer, dir + OptimizerFile, ct);
        using (var rngStream = new MemoryStream(rng, writable: false))
            await _store.PutAsync(dir + RngFile, rngStream, "application/octet-stream", ct);

        // Recorded from what the store committed, not from what we meant to write: the marker may only name files that exist.
        var files = new Dictionary<string, CheckpointFileRecord>(StringComparer.Ordinal);
        foreach (var name in new[] { ModelFile, ModelCheckpoint.SidecarPath(ModelFile), OptimizerFile, RngFile })
        {
            var info = await _store.GetInfoAsync(dir + name, ct)
                ?? throw new IOException($"Checkpoint file '{dir}{name}' is missing right after it was written.");
            files[name] = new CheckpointFileRecord(info.Sha256, info.Bytes);
        }

        var document = new CheckpointDocument(FormatVersion, position, DateTimeOffset.UtcNow, optimizer.Kind, files, (JsonObject)state.DeepClone());
        using (var marker = new MemoryStream(JsonSerializer.SerializeToUtf8Bytes(document, PipelineJson.Options), writable: false))
            await _store.PutAsync(dir + MarkerFile, marker, "application/json", ct);

        try
        {
            await PruneAsync(position.Step, ct);
        }
        catch (Exception ex)
        {
            // The checkpoint is committed; a failed clean-up only costs space and is retried after the next save.
            _logger.LogWarning(ex, "Checkpoint {Folder} saved, but pruning old checkpoints failed: {Reason}", dir, ex.Message);
        }
        return new TrainingCheckpoint(position, (JsonObject)state.DeepClone(), dir);
    }

    /// <summary>
    /// Newest intact checkpoint loaded into <paramref name="model"/> and <paramref name="optimizer"/> (and the torch RNG
    /// state restored), or null when there is none. Nothing is copied into model or optimizer until every file of that
    /// checkpoint has been verified; a corrupt, incomplete or ill-fitting checkpoint is skipped with a warning.
    /// </summary>
    /// <remarks>
    /// Only evidence that a checkpoint is bad moves on to the previous one (sha256 or size mismatch, missing file,
    /// unparsable marker, keys or shapes that do not fit). Other I/O errors (a full scratch disk, a store outage)
    /// propagate: falling back on them would silently throw training progress away.
    /// </remarks>
    public async Task<TrainingCheckpoint?> LoadNewestAsync(nn.Module model, TrainingOptimizer optimizer, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(optimizer);
        foreach (var candidate in (await ScanAsync(ct)).OrderByDescending(f => f.Step))
        {
            if (!candidate.HasMarker)
            {
                _logger.LogWarning("Checkpoint {Folder} is incomplete (no {Marker}; a save was interrupted); trying the previous one.",
                    candidate.Folder, MarkerFile);
                continue;
            }
            try
            {
                var loaded = await LoadAsync(candidate, model, optimizer, ct);
                _logger.LogInformation("Resumed from checkpoint {Folder} at step {Step} (epoch {Epoch}, batch {Batch}).",
                    candidate.Folder, loaded.Position.Step, loaded.Position.Epoch, loaded.Position.BatchInEpoch);
                return loaded;
            }
            catch (Exception ex) when (ShowsCheckpointIsBad(ex))
            {
                _logger.LogWarning("Checkpoint {Folder} is not usable: {Reason} Trying the previous one.", candidate.Folder, ex.Message);
            }
        }
        return null;
    }

    /// <summary>The positions of the complete checkpoints (those with a readable marker), oldest first.</summary>
    public async Task<IReadOnlyList<TrainingPosition>> ListAsync(CancellationToken ct)
    {
        var positions = new List<TrainingPosition>();
        foreach (var folder in (await ScanAsync(ct)).Where(f => f.HasMarker).OrderBy(f => f.Step))
        {
            try
            {
                positions.Add((await ReadMarkerAsync(folder, ct)).Position);
            }
            catch (Exception ex) when (ShowsCheckpointIsBad(ex))
            {
                _logger.LogWarning("Checkpoint {Folder} has an unreadable {Marker}: {Reason}", folder.Folder, MarkerFile, ex.Message);
            }
        }
        return positions;
    }

    private async Task<TrainingCheckpoint> LoadAsync(CheckpointFolder folder, nn.Module model, TrainingOptimizer optimizer, CancellationToken ct)
    {
        var document = await ReadMarkerAsync(folder, ct);
        foreach (var required in new[] { ModelFile, ModelCheckpoint.SidecarPath(ModelFile), OptimizerFile })
        {
            if (!document.Files.ContainsKey(required))
                throw new InvalidDataException($"{MarkerFile} does not list {required}.");
        }
        if (document.Optimizer != optimizer.Kind)
            throw new InvalidDataException($"it holds {document.Optimizer} state, the trainer uses {optimizer.Kind}.");

        var scratch = Path.Combine(_scratch, $"load-{Guid.NewGuid():N}");
        Directory.CreateDirectory(scratch);
        try
        {
            // Every file is fetched and checked before the first byte goes into the model or the optimizer.
            foreach (var (name, record) in document.Files)
                await DownloadVerifiedAsync(folder.Folder, name, record, Path.Combine(scratch, name), ct);
            var rng = document.Files.ContainsKey(RngFile) ? await File.ReadAllBytesAsync(Path.Combine(scratch, RngFile), ct) : null;
            using (var current = random.get_rng_state())
            {
                if (rng is not null && rng.Length != current.numel())
                    throw new InvalidDataException($"{RngFile} holds {rng.Length} bytes, the torch generator state has {current.numel()}.");
            }

            Apply(model, optimizer, Path.Combine(scratch, ModelFile), Path.Combine(scratch, OptimizerFile), rng);
            return new TrainingCheckpoint(document.Position, document.State, folder.Folder);
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
        }
    }

    /// <summary>
    /// Both files are read and checked against the model and the optimizer before either changes (the model loader
    /// checks every key and shape before it copies), so a checkpoint that does not fit leaves both as they were.
    /// </summary>
    private static void Apply(nn.Module model, TrainingOptimizer optimizer, string modelPath, string optimizerPath, byte[]? rng)
    {
        var requiresGrad = model.named_parameters().Select(p => (p.parameter, p.parameter.requires_grad)).ToList();
        OptimizerState state;
        try
        {
            using var file = File.OpenRead(optimizerPath);
            state = optimizer.Read(file);
        }
        catch (Exception ex) when (ex is InvalidDataException or CheckpointFormatException)
        {
            throw new InvalidDataException($"{OptimizerFile} does not fit the optimizer: {ex.Message}", ex);
        }
        using (state)
        {
            ModelCheckpoint.Load(model, modelPath);
            optimizer.Apply(state);
        }
        // Values are copied into the existing parameters, which keeps their flags; re-applied anyway because a
        // parameter that loses requires_grad fails only later, in backward() (TORCHSHARP.md, the load_py gotcha).
        foreach (var (parameter, flag) in requiresGrad)
        {
            if (parameter.requires_grad != flag) parameter.requires_grad = flag;
        }
        if (rng is not null)
        {
            using var generatorState = torch.tensor(rng, ScalarType.Byte);
            random.set_rng_state(generatorState);
        }
    }

    private async Task DownloadVerifiedAsync(string folder, string name, CheckpointFileRecord record, string destination, CancellationToken ct)
    {
        if (name.Length == 0 || name.Contains('/') || name.Contains('\\') || name is "." or "..")
            throw new InvalidDataException($"{MarkerFile} lists '{name}', which is not a file name.");
        var info = await _store.GetInfoAsync(folder + name, ct)
            ?? throw new InvalidDataException($"{name} is missing.");
        if (info.Bytes != record.Bytes || !string.Equals(info.Sha256, record.Sha256, StringComparison.OrdinalIgnoreCase))
        {
            throw new InvalidDataException(
                $"{name} in the store has {info.Bytes} bytes and sha256 {info.Sha256}; {MarkerFile} lists {record.Bytes} bytes and {record.Sha256}.");
        }
        // The store's stream throws ArtifactCorruptedException at its end when the bytes do not hash to the listed sha256.
        await using var source = await _store.OpenReadAsync(folder + name, record.Sha256, ct);
        await using var file = new FileStream(destination, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true);
        await source.CopyToAsync(file, 1 << 16, ct);
        if (file.Length != record.Bytes)
            throw new InvalidDataException($"{name} read back {file.Length} bytes; {MarkerFile} lists {record.Bytes}.");
    }

    private async Task<CheckpointDocument> ReadMarkerAsync(CheckpointFolder folder, CancellationToken ct)
    {
        using var buffer = new MemoryStream();
        await using (var s = await _store.OpenReadAsync(folder.Folder + MarkerFile, ct: ct))
            await s.CopyToAsync(buffer, ct);
        var document = JsonSerializer.Deserialize<CheckpointDocument>(buffer.ToArray(), PipelineJson.Options)
            ?? throw new InvalidDataException($"{MarkerFile} is empty.");
        if (document.FormatVersion != FormatVersion)
            throw new InvalidDataException($"{MarkerFile} has format_version {document.FormatVersion}; this build reads {FormatVersion}.");
        if (document.Position.Step != folder.Step)
            throw new InvalidDataException($"{MarkerFile} records step {document.Position.Step} in the folder of step {folder.Step}.");
        return document;
    }

    private async Task PutOptimizerAsync(TrainingOptimizer optimizer, string path, CancellationToken ct)
    {
        // Spooled to scratch so memory stays bounded for large models.
        Directory.CreateDirectory(_scratch);
        var spool = Path.Combine(_scratch, $"optimizer-{Guid.NewGuid():N}.safetensors");
        try
        {
            await using (var file = new FileStream(spool, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
                await optimizer.SaveAsync(file, ct);
            await using var read = new FileStream(spool, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true);
            await _store.PutAsync(path, read, "application/octet-stream", ct);
        }
        finally
        {
            File.Delete(spool);
        }
    }

    /// <summary>
    /// Keeps the newest <c>keep</c> complete checkpoints up to <paramref name="savedStep"/>. Deletes older ones,
    /// interrupted saves older than the one just made, and any checkpoint newer than it: a save at a lower step than an
    /// existing checkpoint means training resumed from an earlier one (the newer was unusable), and a stale newer
    /// checkpoint would otherwise count towards <c>keep</c> and push out the good ones.
    /// </summary>
    private async Task PruneAsync(long savedStep, CancellationToken ct)
    {
        var folders = await ScanAsync(ct);
        foreach (var stale in folders.Where(f => f.Step > savedStep))
        {
            _logger.LogWarning("Deleting checkpoint {Folder}: training continued from an earlier checkpoint and saved step {Step}.",
                stale.Folder, savedStep);
            await DeleteFolderAsync(stale, ct);
        }
        var complete = folders.Where(f => f.HasMarker && f.Step <= savedStep).OrderByDescending(f => f.Step).ToList();
        foreach (var old in complete.Skip(_keep))
            await DeleteFolderAsync(old, ct);
        foreach (var interrupted in folders.Where(f => !f.HasMarker && f.Step < savedStep))
            await DeleteFolderAsync(interrupted, ct);
    }

    /// <summary>Keeps only the newest <paramref name="keep"/> complete checkpoints (0: none), e.g. once the model is written.</summary>
    public async Task PruneToAsync(int keep, CancellationToken ct)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(keep);
        var folders = await ScanAsync(ct);
        var kept = folders.Where(f => f.HasMarker).OrderByDescending(f => f.Step).Take(keep).ToHashSet();
        foreach (var folder in folders.Where(f => !kept.Contains(f)))
            await DeleteFolderAsync(folder, ct);
    }

    private async Task DeleteFolderAsync(CheckpointFolder folder, CancellationToken ct)
    {
        // The marker first: a half-deleted folder is then incomplete, never intact.
        await _store.DeleteAsync(folder.Folder + MarkerFile, ct);
        var paths = new List<string>();
        await foreach (var artifact in _store.ListAsync(folder.Folder, ct))
            paths.Add(artifact.Path);
        foreach (var path in paths)
            await _store.DeleteAsync(path, ct);
    }

    private async Task<List<CheckpointFolder>> ScanAsync(CancellationToken ct)
    {
        var folders = new Dictionary<long, CheckpointFolder>();
        await foreach (var artifact in _store.ListAsync(_folder, ct))
        {
            var rest = artifact.Path.AsSpan(_folder.Length);
            var slash = rest.IndexOf('/');
            if (slash < 0 || !TryParseStep(rest[..slash], out var step)) continue;
            var isMarker = rest[(slash + 1)..].SequenceEqual(MarkerFile);
            folders[step] = folders.TryGetValue(step, out var known)
                ? known with { HasMarker = known.HasMarker || isMarker }
                : new CheckpointFolder(step, FolderFor(step), isMarker);
        }
        return folders.Values.ToList();
    }

    private static bool TryParseStep(ReadOnlySpan<char> name, out long step)
    {
        step = 0;
        return name.Length == FolderPrefix.Length + StepDigits
            && name.StartsWith(FolderPrefix, StringComparison.Ordinal)
            && name[FolderPrefix.Length..].IndexOfAnyExceptInRange('0', '9') < 0
            && long.TryParse(name[FolderPrefix.Length..], NumberStyles.None, CultureInfo.InvariantCulture, out step);
    }

    private static bool ShowsCheckpointIsBad(Exception ex) => ex is
        ArtifactCorruptedException or ArtifactNotFoundException or CheckpointFormatException or CheckpointMismatchException
        or InvalidDataException or JsonException or EndOfStreamException;

    private static byte[] RngState()
    {
        using var state = random.get_rng_state();
        return state.data<byte>().ToArray();
    }

    private sealed record CheckpointFolder(long Step, string Folder, bool HasMarker);
}

/// <summary>One file of a checkpoint as its marker lists it.</summary>
public sealed record CheckpointFileRecord(string Sha256, long Bytes);

/// <summary>
/// <c>checkpoint.json</c>: format version, position, when, which optimizer type wrote <c>optimizer.bin</c>, every other
/// file with its sha256 and size, and the trainer's free-form state.
/// </summary>
public sealed record CheckpointDocument(
    int FormatVersion, TrainingPosition Position, DateTimeOffset CreatedAt, string Optimizer,
    Dictionary<string, CheckpointFileRecord> Files, JsonObject State);
