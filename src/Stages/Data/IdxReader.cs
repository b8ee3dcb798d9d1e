using System.Buffers.Binary;
using System.IO.Compression;

namespace Pipeline.Stages.Data;

/// <summary>Images from an IDX file (LeCun's MNIST format): <c>Count</c> row-major grey images, one byte per pixel.</summary>
public sealed record IdxImages(int Count, int Rows, int Columns, byte[] Pixels)
{
    public ReadOnlySpan<byte> Image(int index) => Pixels.AsSpan(index * Rows * Columns, Rows * Columns);
}

/// <summary>
/// Reads the IDX files of MNIST and Fashion-MNIST (optionally gzipped). Errors are <see cref="InvalidDataException"/>s
/// whose message names the file.
/// </summary>
public static class IdxReader
{
    /// <summary>Magic number of an unsigned-byte, 3-dimensional IDX file (images).</summary>
    public const int ImagesMagic = 0x0803;

    /// <summary>Magic number of an unsigned-byte, 1-dimensional IDX file (labels).</summary>
    public const int LabelsMagic = 0x0801;

    public static IdxImages ReadImages(string path, int? limit = null)
    {
        using var s = Open(path);
        CheckMagic(path, ReadHeader(s, path, 1)[0], ImagesMagic, "images (idx3)");
        var header = ReadHeader(s, path, 3);
        var (count, rows, cols) = (header[0], header[1], header[2]);
        if (count < 0 || rows <= 0 || cols <= 0 || (long)rows * cols > 1 << 24)
            throw new InvalidDataException($"IDX file '{path}' has an implausible shape {count}x{rows}x{cols}.");
        var n = limit is { } l ? Math.Min(l, count) : count;
        var pixels = new byte[(long)n * rows * cols];
        ReadExactly(s, pixels, path, $"{n} images of {rows}x{cols}");
        return new IdxImages(n, rows, cols, pixels);
    }

    public static byte[] ReadLabels(string path, int? limit = null)
    {
        using var s = Open(path);
        CheckMagic(path, ReadHeader(s, path, 1)[0], LabelsMagic, "labels (idx1)");
        var count = ReadHeader(s, path, 1)[0];
        if (count < 0) throw new InvalidDataException($"IDX file '{path}' declares a negative count {count}.");
        var labels = new byte[limit is { } l ? Math.Min(l, count) : count];
        ReadExactly(s, labels, path, $"{labels.Length} labels");
        return labels;
    }

    /// <summary>Writes an uncompressed or (for a '.gz' path) gzipped IDX file; for tests and tools.</summary>
    public static void Write(string path, int magic, int[] dimensions, ReadOnlySpan<byte> data)
    {
        using var file = File.Create(path);
        using Stream s = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? new GZipStream(file, CompressionLevel.Fastest) : file;
        Span<byte> word = stackalloc byte[4];
        foreach (var v in (int[])[magic, .. dimensions])
        {
            BinaryPrimitives.WriteInt32BigEndian(word, v);
            s.Write(word);
        }
        s.Write(data);
    }

    private static Stream Open(string path)
    {
        var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        return path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase)
            ? new BufferedStream(new GZipStream(file, CompressionMode.Decompress), 1 << 16)
            : file;
    }

    private static int[] ReadHeader(Stream s, string path, int words)
    {
        var bytes = new byte[4 * words];
        ReadExactly(s, bytes, path, "the header");
        var header = new int[words];
        for (var i = 0; i < words; i++) header[i] = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(4 * i));
        return header;
    }

    private static void CheckMagic(string path, int actual, int expected, string what)
    {
        if (actual != expected)
            throw new InvalidDataException($"'{path}' is not an IDX {what} file: magic number {actual} (0x{actual:x8}), expected {expected} (0x{expected:x8}). Check that the file is not truncated, swapped with its pair, or gzipped twice.");
    }

    private static void ReadExactly(Stream s, byte[] buffer, string path, string what)
    {
        try
        {
            s.ReadExactly(buffer);
        }
        catch (EndOfStreamException)
        {
            throw new InvalidDataException($"IDX file '{path}' ends before {what}: it is truncated. Download or reinstall it.");
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"IDX file '{path}' is not valid gzip ({e.Message}). Download or reinstall it.", e);
        }
    }
}
