using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using TorchSharp;
using static TorchSharp.torch;

namespace Pipeline.Stages.NeuralFit;

/// <summary>
/// NumPy's .npy format (version 1.0, little-endian, C order) for float64, float32, int64 and int32 tensors: how arrays
/// pass to and from the Python reference scripts (scikit-learn checks, <c>bench/reference/neural_fit.py</c>).
/// </summary>
public static partial class NpyFile
{
    private static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    public static void Write(string path, Tensor tensor)
    {
        var t = tensor.detach().cpu().contiguous();
        var descr = t.dtype switch
        {
            ScalarType.Float64 => "<f8",
            ScalarType.Float32 => "<f4",
            ScalarType.Int64 => "<i8",
            ScalarType.Int32 => "<i4",
            _ => throw new NotSupportedException($"dtype {t.dtype} is not written as .npy here; convert to float64, float32, int64 or int32."),
        };
        var shape = t.shape.Length == 1 ? $"({t.shape[0]},)" : $"({string.Join(", ", t.shape)})";
        var header = $"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}";
        // The header is padded with spaces and ends in a newline so that the data starts on a 64-byte boundary.
        var total = Magic.Length + 4 + header.Length + 1;
        header = header.PadRight(header.Length + ((64 - (total % 64)) % 64)) + "\n";
        using var file = File.Create(path);
        file.Write(Magic);
        file.Write([1, 0]);
        Span<byte> length = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(length, (ushort)header.Length);
        file.Write(length);
        file.Write(Encoding.ASCII.GetBytes(header));
        file.Write(t.bytes);
    }

    public static Tensor Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < 10 || !bytes.AsSpan(0, 6).SequenceEqual(Magic)) throw new InvalidDataException($"{path} is not a .npy file.");
        var (headerLength, start) = bytes[6] == 1
            ? (BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(8)), 10)
            : ((int)BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(8)), 12);
        var header = Encoding.ASCII.GetString(bytes, start, headerLength);
        var descr = DescrPattern().Match(header).Groups[1].Value;
        if (header.Contains("'fortran_order': True", StringComparison.Ordinal)) throw new NotSupportedException($"{path} is in Fortran order; save it with np.ascontiguousarray.");
        var shapeText = ShapePattern().Match(header).Groups[1].Value;
        var shape = shapeText.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(s => long.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        var data = bytes.AsSpan(start + headerLength);
        var itemSize = descr switch { "<f8" or "<i8" => 8, "<f4" or "<i4" => 4, _ => 0 };
        var count = shape.Aggregate(1L, (a, b) => a * b);
        if (itemSize > 0 && data.Length != count * itemSize)
            throw new InvalidDataException($"{path} has {data.Length} data bytes for shape [{string.Join(", ", shape)}] (expected {count * itemSize}).");
        return descr switch
        {
            "<f8" => tensor(Cast<double>(data), shape),
            "<f4" => tensor(Cast<float>(data), shape),
            "<i8" => tensor(Cast<long>(data), shape),
            "<i4" => tensor(Cast<int>(data), shape),
            _ => throw new NotSupportedException($"{path}: dtype '{descr}' is not read here (little-endian f8, f4, i8, i4 are)."),
        };
    }

    private static T[] Cast<T>(ReadOnlySpan<byte> data) where T : struct => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, T>(data).ToArray();

    [GeneratedRegex(@"'descr':\s*'([^']+)'")]
    private static partial Regex DescrPattern();

    [GeneratedRegex(@"'shape':\s*\(([^)]*)\)")]
    private static partial Regex ShapePattern();
}
