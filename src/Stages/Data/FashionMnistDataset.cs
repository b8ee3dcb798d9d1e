using Pipeline.Stages.Execution;
using SkiaSharp;

namespace Pipeline.Stages.Data;

/// <summary>
/// Fashion-MNIST (Xiao et al. 2017) from its four IDX files; t10k is the val split. The whole set is 55 MB of pixels,
/// so it is read into memory once.
/// </summary>
internal sealed class FashionMnistDataset : IDatasetSource
{
    public static readonly IReadOnlyList<string> ClassNames =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    private readonly IdxImages[] _images = new IdxImages[2];
    private readonly byte[][] _labels = new byte[2][];

    public FashionMnistDataset(string folder, int? limitTrain, int? limitVal)
    {
        if (!Directory.Exists(folder))
            throw new StageInputException($"Fashion-MNIST folder '{folder}' does not exist. Install it (apt-get install dataset-fashion-mnist) or set source.path to the folder holding train-images-idx3-ubyte.gz and its three siblings.");
        (_images[0], _labels[0]) = ReadPair(folder, "train", limitTrain);
        (_images[1], _labels[1]) = ReadPair(folder, "t10k", limitVal);
    }

    public IReadOnlyList<string> Classes => ClassNames;
    public int Channels => 1;
    public int Count(ShardSplitName split) => _images[(int)split].Count;
    public int ClassOf(ShardSplitName split, int index) => _labels[(int)split][index];
    public string Describe(ShardSplitName split, int index) => $"{(split == ShardSplitName.Train ? "train" : "t10k")}[{index}]";

    public SourceImage Load(ShardSplitName split, int index)
    {
        var images = _images[(int)split];
        var bitmap = new SKBitmap(new SKImageInfo(images.Columns, images.Rows, SKColorType.Gray8, SKAlphaType.Opaque));
        images.Image(index).CopyTo(bitmap.GetPixelSpan());
        return new SourceImage(bitmap, null);
    }

    private static (IdxImages, byte[]) ReadPair(string folder, string prefix, int? limit)
    {
        var imagesPath = Find(folder, $"{prefix}-images-idx3-ubyte");
        var labelsPath = Find(folder, $"{prefix}-labels-idx1-ubyte");
        try
        {
            var images = IdxReader.ReadImages(imagesPath, limit);
            var labels = IdxReader.ReadLabels(labelsPath, limit);
            if (labels.Length != images.Count)
                throw new StageInputException($"'{imagesPath}' holds {images.Count} images but '{labelsPath}' holds {labels.Length} labels; the pair must match. Reinstall the dataset.");
            var bad = Array.FindIndex(labels, l => l >= ClassNames.Count);
            if (bad >= 0)
                throw new StageInputException($"'{labelsPath}' has label {labels[bad]} at index {bad}; Fashion-MNIST labels are 0..9. Reinstall the dataset.");
            return (images, labels);
        }
        catch (InvalidDataException e)
        {
            throw new StageInputException(e.Message);
        }
    }

    /// <summary>The gzipped file as distributed, or an already unpacked one.</summary>
    private static string Find(string folder, string name)
    {
        foreach (var candidate in new[] { name + ".gz", name })
        {
            var path = Path.Combine(folder, candidate);
            if (File.Exists(path)) return path;
        }
        throw new StageInputException($"Fashion-MNIST file '{Path.Combine(folder, name + ".gz")}' is missing. The folder needs {{train,t10k}}-{{images-idx3,labels-idx1}}-ubyte.gz; reinstall (apt-get install dataset-fashion-mnist) or fix source.path.");
    }
}
