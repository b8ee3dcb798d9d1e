using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Pipeline.Stages.Artifacts;
using TorchSharp;
using static TorchSharp.torch;

namespace Pipeline.Stages.Models.Checkpoints;

/// <summary>A checkpoint's sidecar (<c>{file}.json</c>): the model spec the caller supplied and what proves the tensors file.</summary>
public sealed record CheckpointManifest(int FormatVersion, int TensorCount, long Bytes, string Sha256, JsonNode Spec);

/// <summary>The checkpoint's tensors do not fit the model; lists every offending key.</summary>
public sealed class CheckpointMismatchException(IReadOnlyList<string> missing, IReadOnlyList<string> unexpected, IReadOnlyList<string> mismatched)
    : InvalidOperationException(Describe(missing, unexpected, mismatched))
{
    /// <summary>Keys the model has and the checkpoint lacks.</summary>
    public IReadOnlyList<string> MissingKeys { get; } = missing;

    /// <summary>Keys the checkpoint has and the model lacks.</summary>
    public IReadOnlyList<string> UnexpectedKeys { get; } = unexpected;

    /// <summary>"key: what differs" for keys present in both with another shape or dtype.</summary>
    public IReadOnlyList<string> Mismatched { get; } = mismatched;

    private static string Describe(IReadOnlyList<string> missing, IReadOnlyList<string> unexpected, IReadOnlyList<string> mismatched)
    {
        var sb = new StringBuilder("The checkpoint does not fit the model.");
        if (missing.Count > 0) sb.Append(" Missing keys: ").AppendJoin(", ", missing).Append('.');
        if (unexpected.Count > 0) sb.Append(" Unexpected keys: ").AppendJoin(", ", unexpected).Append('.');
        if (mismatched.Count > 0) sb.Append(" Mismatched: ").AppendJoin("; ", mismatched).Append('.');
        return sb.ToString();
    }
}

/// <summary>
/// Saves and loads a module's state dict — parameters and buffers (BN running stats, <c>num_batches_tracked</c>) under
/// PyTorch's keys — as safetensors, with a JSON sidecar <c>{file}.json</c> holding the model spec, the format version,
/// the tensor count and the sha256 of the tensors file. Loading is strict: every key, shape and dtype must match, and
/// nothing is copied into the model until the whole file has been read and checked.
/// </summary>
/// <remarks>
/// Hand-written rather than TorchSharp.PyBridge's <c>save_safetensors</c>: that writer neither sorts nor pads the
/// header, its loader goes through <c>load_state_dict</c> (no dtype check, errors that do not list every key), and
/// streaming to the artifact store with a hash needs the writer in hand anyway. The format is small (see
/// <see cref="Safetensors"/>); Python reads the files with json + numpy (tests/…/Models/check_resnet18_safetensors.py).
/// </remarks>
public static class ModelCheckpoint
{
    public const int FormatVersion = 1;
    public const string MediaType = "application/vnd.safetensors";
    public const string SidecarMediaType = "application/json";

    public static string SidecarPath(string path) => path + ".json";

    /// <summary>Writes <paramref name="path"/> and its sidecar, each through a temp file renamed into place.</summary>
    public static async Task<CheckpointManifest> SaveAsync(nn.Module model, string path, JsonNode spec, CancellationToken ct = default)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        var tempTensors = Path.Combine(dir, $".{Path.GetFileName(full)}.tmp-{Guid.NewGuid():N}");
        var tempSidecar = tempTensors + ".json";
        try
        {
            SafetensorsWritten written;
            await using (var file = new FileStream(tempTensors, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
            {
                written = await WriteTensorsAsync(model, file, ct);
                file.Flush(flushToDisk: true);
            }
            var manifest = new CheckpointManifest(FormatVersion, written.TensorCount, written.Bytes, written.Sha256, spec.DeepClone());
            await File.WriteAllBytesAsync(tempSidecar, SerializeManifest(manifest), ct);
            // Tensors first, then the sidecar: between the two renames an old sidecar's sha256 no longer matches the
            // new tensors, so a reader reports corruption instead of pairing a spec with the wrong weights.
            File.Move(tempTensors, full, overwrite: true);
            File.Move(tempSidecar, SidecarPath(full), overwrite: true);
            return manifest;
        }
        finally
        {
            if (File.Exists(tempTensors)) File.Delete(tempTensors);
            if (File.Exists(tempSidecar)) File.Delete(tempSidecar);
        }
    }

    /// <summary>Loads the weights of <paramref name="path"/> into <paramref name="model"/> (strict) and returns the spec.</summary>
    public static JsonNode Load(nn.Module model, string path)
    {
        var manifest = ReadManifest(path);
        using (var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16))
        {
            if (file.Length != manifest.Bytes)
            {
                throw new CheckpointFormatException(file.Length < manifest.Bytes
                    ? $"Checkpoint '{path}' is truncated: {file.Length} bytes, the sidecar records {manifest.Bytes}."
                    : $"Checkpoint '{path}' has {file.Length} bytes, the sidecar records {manifest.Bytes}.");
            }
            using var hashing = new Sha256Stream(file, manifest.Sha256, path);
            LoadTensors(model, hashing, manifest.TensorCount);
        }
        return manifest.Spec;
    }

    /// <summary>The model spec recorded beside <paramref name="path"/>.</summary>
    public static JsonNode ReadSpec(string path) => ReadManifest(path).Spec;

    public static CheckpointManifest ReadManifest(string path)
    {
        var sidecar = SidecarPath(path);
        if (!File.Exists(sidecar))
            throw new FileNotFoundException($"The checkpoint sidecar '{sidecar}' does not exist.", sidecar);
        return ParseManifest(File.ReadAllBytes(sidecar), sidecar);
    }

    /// <summary>Streams the model's state dict as safetensors (no sidecar); the stream stays open.</summary>
    public static Task<SafetensorsWritten> WriteTensorsAsync(nn.Module model, Stream destination, CancellationToken ct = default) =>
        Safetensors.WriteAsync(model.state_dict(), destination, new Dictionary<string, string> { ["format"] = "pt" }, ct);

    /// <summary>
    /// Reads safetensors from <paramref name="source"/> (to its end) into <paramref name="model"/>. Keys, shapes and dtypes
    /// must equal the model's state dict; <paramref name="expectedTensorCount"/>, when given, must equal the header's.
    /// Parameters keep their <c>requires_grad</c>: values are copied into the existing tensors.
    /// </summary>
    public static void LoadTensors(nn.Module model, Stream source, int? expectedTensorCount = null)
    {
        var entries = Safetensors.ReadHeader(source);
        if (expectedTensorCount is { } n && n != entries.Count)
            throw new CheckpointFormatException($"The sidecar records {n} tensors but the safetensors header holds {entries.Count}.");
        var target = model.state_dict();
        CheckFits(target, entries);

        var loaded = Safetensors.ReadData(source, entries);
        try
        {
            using var noGrad = torch.no_grad();
            foreach (var (name, tensor) in loaded) target[name].copy_(tensor);
        }
        finally
        {
            foreach (var t in loaded.Values) t.Dispose();
        }
    }

    /// <summary>Saves to an artifact store: <paramref name="path"/> (safetensors) and <c>{path}.json</c> (sidecar).</summary>
    public static async Task<CheckpointManifest> SaveAsync(IArtifactStore store, string path, nn.Module model, JsonNode spec, CancellationToken ct = default)
    {
        // Spooled to a temp file so memory stays bounded whatever the model's size; the store then streams it.
        var spool = Path.Combine(Path.GetTempPath(), $"checkpoint-{Guid.NewGuid():N}.safetensors");
        await using var file = new FileStream(spool, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16,
            FileOptions.DeleteOnClose | FileOptions.Asynchronous);
        var written = await WriteTensorsAsync(model, file, ct);
        file.Position = 0;
        await store.PutAsync(path, file, MediaType, ct);
        var manifest = new CheckpointManifest(FormatVersion, written.TensorCount, written.Bytes, written.Sha256, spec.DeepClone());
        using var sidecar = new MemoryStream(SerializeManifest(manifest));
        await store.PutAsync(SidecarPath(path), sidecar, SidecarMediaType, ct);
        return manifest;
    }

    /// <summary>
    /// The sidecar at <paramref name="sidecarPath"/> in an artifact store (the model spec without the weights), its bytes
    /// checked against <paramref name="sha256"/>; throws <see cref="CheckpointFormatException"/> when it is not a sidecar.
    /// </summary>
    public static async Task<CheckpointManifest> ReadManifestAsync(IArtifactStore store, string sidecarPath, string? sha256, CancellationToken ct = default)
    {
        await using var s = await store.OpenReadAsync(sidecarPath, sha256, ct);
        using var buffer = new MemoryStream();
        await s.CopyToAsync(buffer, ct);
        return ParseManifest(buffer.ToArray(), sidecarPath);
    }

    /// <summary>Loads from an artifact store into <paramref name="model"/> (strict), verifying the sidecar's sha256.</summary>
    public static async Task<JsonNode> LoadAsync(IArtifactStore store, string path, nn.Module model, CancellationToken ct = default)
    {
        byte[] sidecarBytes;
        await using (var s = await store.OpenReadAsync(SidecarPath(path), ct: ct))
        using (var buffer = new MemoryStream())
        {
            await s.CopyToAsync(buffer, ct);
            sidecarBytes = buffer.ToArray();
        }
        var manifest = ParseManifest(sidecarBytes, SidecarPath(path));
        await using (var tensors = await store.OpenReadAsync(path, manifest.Sha256, ct))
        {
            // Synchronous reads over the store's stream: tensor bytes land in native memory, which async cannot target.
            LoadTensors(model, tensors, manifest.TensorCount);
        }
        return manifest.Spec;
    }

    private static void CheckFits(Dictionary<string, Tensor> target, IReadOnlyList<SafetensorsEntry> entries)
    {
        var inFile = entries.ToDictionary(e => e.Name, StringComparer.Ordinal);
        var missing = target.Keys.Where(k => !inFile.ContainsKey(k)).Order(StringComparer.Ordinal).ToList();
        var unexpected = inFile.Keys.Where(k => !target.ContainsKey(k)).Order(StringComparer.Ordinal).ToList();
        var mismatched = new List<string>();
        foreach (var (name, tensor) in target.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            if (!inFile.TryGetValue(name, out var e)) continue;
            if (!e.Shape.SequenceEqual(tensor.shape))
                mismatched.Add($"{name}: shape [{string.Join(", ", e.Shape)}] in the checkpoint, [{string.Join(", ", tensor.shape)}] in the model");
            else if (e.DType != tensor.dtype)
                mismatched.Add($"{name}: dtype {e.DType} in the checkpoint, {tensor.dtype} in the model");
        }
        if (missing.Count + unexpected.Count + mismatched.Count > 0)
            throw new CheckpointMismatchException(missing, unexpected, mismatched);
    }

    private static byte[] SerializeManifest(CheckpointManifest m)
    {
        var json = new JsonObject
        {
            ["format"] = "safetensors",
            ["format_version"] = m.FormatVersion,
            ["tensor_count"] = m.TensorCount,
            ["bytes"] = m.Bytes,
            ["sha256"] = m.Sha256,
            ["spec"] = m.Spec.DeepClone(),
        };
        return Encoding.UTF8.GetBytes(json.ToJsonString(PipelineJson.Options));
    }

    private static CheckpointManifest ParseManifest(byte[] bytes, string where)
    {
        try
        {
            var o = JsonNode.Parse(bytes)?.AsObject() ?? throw new CheckpointFormatException($"Checkpoint sidecar '{where}' is empty.");
            var version = o["format_version"]?.GetValue<int>() ?? throw new CheckpointFormatException($"Checkpoint sidecar '{where}' has no format_version.");
            if (version != FormatVersion)
                throw new CheckpointFormatException($"Checkpoint sidecar '{where}' has format_version {version}; this build reads {FormatVersion}.");
            return new CheckpointManifest(
                version,
                o["tensor_count"]?.GetValue<int>() ?? throw new CheckpointFormatException($"Checkpoint sidecar '{where}' has no tensor_count."),
                o["bytes"]?.GetValue<long>() ?? throw new CheckpointFormatException($"Checkpoint sidecar '{where}' has no bytes."),
                o["sha256"]?.GetValue<string>() ?? throw new CheckpointFormatException($"Checkpoint sidecar '{where}' has no sha256."),
                o["spec"]?.DeepClone() ?? throw new CheckpointFormatException($"Checkpoint sidecar '{where}' has no spec."));
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or FormatException)
        {
            throw new CheckpointFormatException($"Checkpoint sidecar '{where}' is not valid: {ex.Message}", ex);
        }
    }
}
