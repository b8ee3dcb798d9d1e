using Pipeline.Stages.Data;

namespace Pipeline.Stages.Tests.Data;

public sealed class IdxReaderTests : IDisposable
{
    private readonly StageTestHarness _h = new();

    public void Dispose() => _h.Dispose();

    [Fact]
    public void Reads_gzipped_images_and_labels_with_a_limit()
    {
        var folder = _h.NewFolder("idx");
        IdxTestFiles.WriteFashionMnist(folder, train: 12, val: 3);

        var images = IdxReader.ReadImages(Path.Combine(folder, "train-images-idx3-ubyte.gz"), limit: 5);
        var labels = IdxReader.ReadLabels(Path.Combine(folder, "train-labels-idx1-ubyte.gz"));

        Assert.Equal((5, 28, 28), (images.Count, images.Rows, images.Columns));
        Assert.Equal(IdxTestFiles.Pixel(4, 100), images.Image(4)[100]);
        Assert.Equal(12, labels.Length);
        Assert.Equal(IdxTestFiles.Label(7), labels[7]);
    }

    [Fact]
    public void Wrong_magic_number_names_the_file()
    {
        var path = Path.Combine(_h.NewFolder("idx"), "labels.idx");
        IdxReader.Write(path, IdxReader.LabelsMagic, [2], [1, 2]);

        var e = Assert.Throws<InvalidDataException>(() => IdxReader.ReadImages(path));

        Assert.Contains(path, e.Message);
        Assert.Contains("2051", e.Message);
    }

    [Fact]
    public void Truncated_file_is_reported_as_truncated()
    {
        var path = Path.Combine(_h.NewFolder("idx"), "images.idx");
        IdxReader.Write(path, IdxReader.ImagesMagic, [3, 28, 28], new byte[100]);

        var e = Assert.Throws<InvalidDataException>(() => IdxReader.ReadImages(path));

        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void Reads_the_installed_fashion_mnist()
    {
        const string folder = "/usr/share/datasets/fashion-mnist";
        if (!File.Exists(Path.Combine(folder, "t10k-images-idx3-ubyte.gz"))) return;

        var images = IdxReader.ReadImages(Path.Combine(folder, "t10k-images-idx3-ubyte.gz"), limit: 100);
        var labels = IdxReader.ReadLabels(Path.Combine(folder, "t10k-labels-idx1-ubyte.gz"));

        Assert.Equal((100, 28, 28), (images.Count, images.Rows, images.Columns));
        Assert.Equal(10_000, labels.Length);
        Assert.All(labels, l => Assert.InRange(l, 0, 9));
    }
}
