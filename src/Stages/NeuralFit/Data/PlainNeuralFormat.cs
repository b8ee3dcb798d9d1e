using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace Pipeline.Stages.NeuralFit;

/// <summary>
/// The plain neural-data format, for data that does not come from Brain-Score. A folder holding:
/// <list type="bullet">
/// <item><c>responses.npy</c> (NumPy v1–3, little-endian float32, C order, shape [presentation, neuroid, time_bin]) or
/// <c>responses.safetensors</c> (one F32 tensor, preferably named <c>responses</c>, same shape);</item>
/// <item><c>presentations.csv</c>: header <c>stimulus_id,repetition,object_name</c>, one row per presentation;</item>
/// <item><c>neuroids.csv</c>: header <c>neuroid_id,region</c>, one row per site;</item>
/// <item><c>time_bins.csv</c>: header <c>start_ms,end_ms</c>, one row per bin.</item>
/// </list>
/// CSV is UTF-8, comma-separated, without quoting (ids must not contain commas); extra columns are ignored.
/// </summary>
public static class PlainNeuralFormat
{
    public static NeuralAssembly Read(string folder)
    {
        var npy = Path.Combine(folder, "responses.npy");
        var st = Path.Combine(folder, "responses.safetensors");
        var (responses, shape, source) = File.Exists(npy) ? (ReadNpy(npy, out var s1), s1, npy)
            : File.Exists(st) ? (ReadSafetensors(st, out var s2), s2, st)
            : throw new NeuralDataException($"{folder}: neither responses.npy nor responses.safetensors exists");
        if (shape.Length != 3) throw new NeuralDataException($"{source}: responses must be 3-D [presentation, neuroid, time_bin], got shape [{string.Join(", ", shape)}]");

        var presentations = ReadCsv(Path.Combine(folder, "presentations.csv"), ["stimulus_id", "repetition", "object_name"],
            (row, file, line) => new Presentation(row[0], ParseInt(row[1], file, line, "repetition"), row[2]));
        var neuroids = ReadCsv(Path.Combine(folder, "neuroids.csv"), ["neuroid_id", "region"], (row, _, _) => new Neuroid(row[0], row[1]));
        var bins = ReadCsv(Path.Combine(folder, "time_bins.csv"), ["start_ms", "end_ms"],
            (row, file, line) => new TimeBin(ParseInt(row[0], file, line, "start_ms"), ParseInt(row[1], file, line, "end_ms")));

        var mismatches = new List<string>();
        if (shape[0] != presentations.Count) mismatches.Add($"presentation axis {shape[0]} vs {presentations.Count} rows in presentations.csv");
        if (shape[1] != neuroids.Count) mismatches.Add($"neuroid axis {shape[1]} vs {neuroids.Count} rows in neuroids.csv");
        if (shape[2] != bins.Count) mismatches.Add($"time_bin axis {shape[2]} vs {bins.Count} rows in time_bins.csv");
        if (mismatches.Count > 0) throw new NeuralDataException($"{source}: shape [{string.Join(", ", shape)}] does not match the coordinates: {string.Join("; ", mismatches)}");
        return new NeuralAssembly(responses, presentations, neuroids, bins);
    }

    /// <summary>Writes the folder (responses.npy and the three CSVs); fails if an id contains a comma or a line break.</summary>
    public static void Write(NeuralAssembly assembly, string folder)
    {
        var bad = assembly.Presentations.SelectMany(p => new[] { p.StimulusId, p.ObjectName }).Concat(assembly.Neuroids.SelectMany(n => new[] { n.NeuroidId, n.Region }))
            .Where(s => s.IndexOfAny([',', '\n', '\r']) >= 0).Distinct().ToList();
        if (bad.Count > 0) throw new NeuralDataException($"{folder}: the plain format cannot hold ids with commas or line breaks: {NeuralDataException.ListIds(bad)}");
        Directory.CreateDirectory(folder);
        WriteNpy(Path.Combine(folder, "responses.npy"), assembly.Responses, [assembly.Presentations.Count, assembly.Neuroids.Count, assembly.TimeBins.Count]);
        var inv = CultureInfo.InvariantCulture;
        File.WriteAllLines(Path.Combine(folder, "presentations.csv"), ["stimulus_id,repetition,object_name", .. assembly.Presentations.Select(p => $"{p.StimulusId},{p.Repetition.ToString(inv)},{p.ObjectName}")]);
        File.WriteAllLines(Path.Combine(folder, "neuroids.csv"), ["neuroid_id,region", .. assembly.Neuroids.Select(n => $"{n.NeuroidId},{n.Region}")]);
        File.WriteAllLines(Path.Combine(folder, "time_bins.csv"), ["start_ms,end_ms", .. assembly.TimeBins.Select(b => $"{b.StartMs.ToString(inv)},{b.EndMs.ToString(inv)}")]);
    }

    private static List<T> ReadCsv<T>(string path, string[] columns, Func<string[], string, int, T> parse)
    {
        if (!File.Exists(path)) throw new NeuralDataException($"{path}: the file does not exist (columns: {string.Join(",", columns)})");
        var lines = File.ReadAllLines(path, Encoding.UTF8);
        if (lines.Length == 0) throw new NeuralDataException($"{path}: empty; expected a header with {string.Join(",", columns)}");
        var header = lines[0].Split(',').Select(h => h.Trim().TrimStart('\uFEFF')).ToList();
        var missing = columns.Where(c => !header.Contains(c)).ToList();
        if (missing.Count > 0) throw new NeuralDataException($"{path}: missing column(s) {string.Join(", ", missing)} (header: {lines[0]})");
        var index = columns.Select(c => header.IndexOf(c)).ToArray();
        var rows = new List<T>();
        for (var i = 1; i < lines.Length; i++)
        {
            if (string.IsNullOrWhiteSpace(lines[i])) continue;
            var cells = lines[i].Split(',');
            if (cells.Length < header.Count) throw new NeuralDataException($"{path}:{i + 1}: {cells.Length} cells, the header has {header.Count}");
            rows.Add(parse([.. index.Select(j => cells[j].Trim())], path, i + 1));
        }
        return rows;
    }

    private static int ParseInt(string s, string file, int line, string column) =>
        int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v
        : double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && d == Math.Round(d) && Math.Abs(d) < int.MaxValue ? (int)d
        : throw new NeuralDataException($"{file}:{line}: {column} '{s}' is not an integer");

    /// <summary>Reads responses through <see cref="NpyFile"/>; anything but float32 is refused with the file named.</summary>
    internal static float[] ReadNpy(string path, out long[] shape)
    {
        Tensor values;
        try
        {
            values = NpyFile.Read(path);
        }
        catch (Exception e) when (e is InvalidDataException or NotSupportedException or FormatException)
        {
            throw new NeuralDataException($"{path}: {e.Message}");
        }
        using (values)
        {
            if (values.dtype != ScalarType.Float32)
                throw new NeuralDataException($"{path}: responses must be little-endian float32 ('<f4'), not {values.dtype}; save them with .astype(np.float32).");
            shape = values.shape;
            return values.data<float>().ToArray();
        }
    }

    internal static void WriteNpy(string path, float[] values, long[] shape)
    {
        using var t = tensor(values, shape);
        NpyFile.Write(path, t);
    }

    internal static float[] ReadSafetensors(string path, out long[] shape)
    {
        var bytes = File.ReadAllBytes(path);
        var headerLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        if (headerLength <= 0 || 8 + headerLength > bytes.Length) throw new NeuralDataException($"{path}: not a safetensors file");
        using var json = JsonDocument.Parse(bytes.AsMemory(8, (int)headerLength));
        var tensors = json.RootElement.EnumerateObject().Where(p => p.Name != "__metadata__").ToList();
        var chosen = tensors.FirstOrDefault(p => p.Name == "responses");
        if (chosen.Value.ValueKind == JsonValueKind.Undefined)
        {
            if (tensors.Count != 1) throw new NeuralDataException($"{path}: expected a tensor named 'responses' (tensors: {string.Join(", ", tensors.Select(t => t.Name))})");
            chosen = tensors[0];
        }
        var dtype = chosen.Value.GetProperty("dtype").GetString();
        if (dtype != "F32") throw new NeuralDataException($"{path}: '{chosen.Name}' is {dtype}; responses must be F32");
        shape = [.. chosen.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64())];
        var offsets = chosen.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        var values = new float[(offsets[1] - offsets[0]) / 4];
        Buffer.BlockCopy(bytes, (int)(8 + headerLength + offsets[0]), values, 0, values.Length * 4);
        return values;
    }
}
