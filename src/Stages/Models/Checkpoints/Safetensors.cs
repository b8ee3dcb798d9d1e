using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace Pipeline.Stages.Models.Checkpoints;

/// <summary>One tensor's entry in a safetensors header.</summary>
public sealed record SafetensorsEntry(string Name, ScalarType DType, long[] Shape, long Begin, long End);

/// <summary>What a write produced: tensor count, total bytes and the sha256 (lower-case hex) of those bytes.</summary>
public sealed record SafetensorsWritten(int TensorCount, long Bytes, string Sha256);

/// <summary>The file is not a readable safetensors file (truncated, bad header, inconsistent offsets).</summary>
public sealed class CheckpointFormatException(string message, Exception? inner = null) : IOException(message, inner);

/// <summary>
/// The safetensors format (huggingface/safetensors): an 8-byte little-endian header length, a UTF-8 JSON header
/// <c>{"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {…}}</c> padded with spaces to a multiple
/// of 8, then the raw little-endian tensor bytes. Written here with keys sorted (ordinal) and data in key order, so the
/// same tensors always give the same bytes; read sequentially, so a non-seekable stream (an artifact download) works.
/// </summary>
public static class Safetensors
{
    /// <summary>The format's own cap on the header (100 MB); a larger length means a corrupt or foreign file.</summary>
    private const long MaxHeaderBytes = 100_000_000;
    private const int CopyChunk = 1 << 20;

    public static async Task<SafetensorsWritten> WriteAsync(
        IReadOnlyDictionary<string, Tensor> tensors, Stream destination,
        IReadOnlyDictionary<string, string>? metadata = null, CancellationToken ct = default)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("safetensors writing assumes a little-endian machine.");
        var names = tensors.Keys.Order(StringComparer.Ordinal).ToArray();
        var header = BuildHeader(names, tensors, metadata);

        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long total = 0;
        async Task Put(ReadOnlyMemory<byte> chunk)
        {
            hash.AppendData(chunk.Span);
            await destination.WriteAsync(chunk, ct);
            total += chunk.Length;
        }

        var prefix = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)header.Length);
        await Put(prefix);
        await Put(header);
        foreach (var name in names)
        {
            ct.ThrowIfCancellationRequested();
            await Put(RawBytes(tensors[name]));
        }
        await destination.FlushAsync(ct);
        return new SafetensorsWritten(names.Length, total, Convert.ToHexStringLower(hash.GetHashAndReset()));
    }

    /// <summary>Reads the 8-byte length and the JSON header, leaving the stream at the start of the tensor data.</summary>
    public static IReadOnlyList<SafetensorsEntry> ReadHeader(Stream source)
    {
        var prefix = new byte[8];
        ReadExactly(source, prefix, "the 8-byte header length");
        var length = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (length == 0 || length > MaxHeaderBytes || (source.CanSeek && (long)length > source.Length - 8))
            throw new CheckpointFormatException(
                $"Not a safetensors file or truncated: header length {length} bytes" +
                (source.CanSeek ? $" but the file has {source.Length} bytes." : "."));
        var json = new byte[length];
        ReadExactly(source, json, "the JSON header");
        return ParseHeader(json);
    }

    /// <summary>
    /// Reads every tensor's bytes in offset order (a non-seekable stream is fine), then checks that the stream ends
    /// there — the end-of-stream read is also what lets a <see cref="Artifacts.Sha256Stream"/> verify its hash.
    /// </summary>
    public static Dictionary<string, Tensor> ReadData(Stream source, IReadOnlyList<SafetensorsEntry> entries)
    {
        var result = new Dictionary<string, Tensor>(entries.Count, StringComparer.Ordinal);
        try
        {
            long position = 0;
            var skip = new byte[4096];
            foreach (var e in entries.OrderBy(e => e.Begin))
            {
                for (var gap = e.Begin - position; gap > 0;)
                {
                    var n = source.Read(skip, 0, (int)Math.Min(gap, skip.Length));
                    if (n == 0) throw Truncated(e.Name);
                    gap -= n;
                }
                var bytes = new byte[e.End - e.Begin];
                ReadExactly(source, bytes, $"tensor '{e.Name}'");
                position = e.End;
                var t = torch.empty(e.Shape, e.DType);
                if (bytes.Length > 0) t.bytes = bytes;
                result.Add(e.Name, t);
            }
            if (source.Read(skip, 0, 1) != 0)
                throw new CheckpointFormatException($"Unexpected bytes after the last tensor (at data offset {position}).");
            return result;
        }
        catch
        {
            foreach (var t in result.Values) t.Dispose();
            throw;
        }
    }

    private static byte[] BuildHeader(string[] names, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal)) w.WriteString(k, v);
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var name in names)
            {
                var t = tensors[name];
                var length = t.numel() * t.ElementSize;
                w.WriteStartObject(name);
                w.WriteString("dtype", DTypeName(t.dtype, name));
                w.WriteStartArray("shape");
                foreach (var d in t.shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + length);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += length;
            }
            w.WriteEndObject();
        }
        var padded = (buffer.WrittenCount + 7) / 8 * 8;
        var header = new byte[padded];
        buffer.WrittenSpan.CopyTo(header);
        header.AsSpan(buffer.WrittenCount).Fill((byte)' ');
        return header;
    }

    private static List<SafetensorsEntry> ParseHeader(byte[] json)
    {
        var entries = new List<SafetensorsEntry>();
        try
        {
            using var doc = JsonDocument.Parse(json);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new CheckpointFormatException("The safetensors header is not a JSON object.");
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (p.Name == "__metadata__") continue;
                var dtype = ParseDType(p.Value.GetProperty("dtype").GetString() ?? "", p.Name);
                var shape = p.Value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray();
                var offsets = p.Value.GetProperty("data_offsets").EnumerateArray().Select(d => d.GetInt64()).ToArray();
                if (offsets.Length != 2 || offsets[0] < 0 || offsets[1] < offsets[0] || shape.Any(d => d < 0))
                    throw new CheckpointFormatException($"Tensor '{p.Name}' has invalid shape or data_offsets in the safetensors header.");
                var expected = shape.Aggregate(1L, (a, d) => a * d) * ElementSize(dtype);
                if (offsets[1] - offsets[0] != expected)
                    throw new CheckpointFormatException(
                        $"Tensor '{p.Name}' spans {offsets[1] - offsets[0]} bytes but its shape [{string.Join(", ", shape)}] and dtype {dtype} need {expected}.");
                entries.Add(new SafetensorsEntry(p.Name, dtype, shape, offsets[0], offsets[1]));
            }
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new CheckpointFormatException($"The safetensors header is not valid JSON of the expected form: {ex.Message}", ex);
        }
        var sorted = entries.OrderBy(e => e.Begin).ToList();
        for (var i = 1; i < sorted.Count; i++)
        {
            if (sorted[i].Begin < sorted[i - 1].End)
                throw new CheckpointFormatException($"Tensors '{sorted[i - 1].Name}' and '{sorted[i].Name}' overlap in the safetensors data.");
        }
        return entries;
    }

    private static byte[] RawBytes(Tensor tensor)
    {
        using var scope = torch.NewDisposeScope();
        var t = tensor.detach().cpu().contiguous();
        return t.numel() == 0 ? [] : t.bytes.ToArray();
    }

    private static void ReadExactly(Stream source, byte[] buffer, string what)
    {
        try
        {
            source.ReadExactly(buffer);
        }
        catch (EndOfStreamException ex)
        {
            throw new CheckpointFormatException($"The safetensors file is truncated: it ends inside {what}.", ex);
        }
    }

    private static CheckpointFormatException Truncated(string name) =>
        new($"The safetensors file is truncated: it ends before tensor '{name}'.");

    private static long ElementSize(ScalarType dtype) => dtype switch
    {
        ScalarType.Float64 or ScalarType.Int64 => 8,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Int16 => 2,
        _ => 1,
    };

    private static string DTypeName(ScalarType dtype, string name) => dtype switch
    {
        ScalarType.Float64 => "F64",
        ScalarType.Float32 => "F32",
        ScalarType.Float16 => "F16",
        ScalarType.BFloat16 => "BF16",
        ScalarType.Int64 => "I64",
        ScalarType.Int32 => "I32",
        ScalarType.Int16 => "I16",
        ScalarType.Int8 => "I8",
        ScalarType.Byte => "U8",
        ScalarType.Bool => "BOOL",
        _ => throw new NotSupportedException($"Tensor '{name}' has dtype {dtype}, which safetensors cannot hold."),
    };

    private static ScalarType ParseDType(string name, string tensor) => name switch
    {
        "F64" => ScalarType.Float64,
        "F32" => ScalarType.Float32,
        "F16" => ScalarType.Float16,
        "BF16" => ScalarType.BFloat16,
        "I64" => ScalarType.Int64,
        "I32" => ScalarType.Int32,
        "I16" => ScalarType.Int16,
        "I8" => ScalarType.Int8,
        "U8" => ScalarType.Byte,
        "BOOL" => ScalarType.Bool,
        _ => throw new CheckpointFormatException($"Tensor '{tensor}' has dtype '{name}', which this reader does not support."),
    };
}
