using Pipeline.Stages.Data;

namespace Pipeline.Stages.Tests.Data;

/// <summary>Small Fashion-MNIST-shaped IDX files with a known pixel pattern.</summary>
internal static class IdxTestFiles
{
    public static byte Pixel(int image, int offset) => (byte)((image * 31 + offset * 7) % 256);

    public static byte Label(int image) => (byte)(image % 10);

    public static void WriteFashionMnist(string folder, int train, int val)
    {
        foreach (var (prefix, n) in new[] { ("train", train), ("t10k", val) })
        {
            var pixels = new byte[n * 28 * 28];
            for (var i = 0; i < n; i++)
                for (var o = 0; o < 784; o++) pixels[i * 784 + o] = Pixel(i, o);
            IdxReader.Write(Path.Combine(folder, $"{prefix}-images-idx3-ubyte.gz"), IdxReader.ImagesMagic, [n, 28, 28], pixels);
            IdxReader.Write(Path.Combine(folder, $"{prefix}-labels-idx1-ubyte.gz"), IdxReader.LabelsMagic, [n],
                Enumerable.Range(0, n).Select(Label).ToArray());
        }
    }
}
