using System.Formats.Tar;
using Pipeline.Stages.Data;
using Pipeline.Stages.Training;
using static TorchSharp.torch;

namespace Pipeline.Stages.NeuralFit;

/// <summary>
/// Stimulus images by id: a folder or a tar of <c>{stimulus_id}.png|jpg|jpeg</c> (case-insensitive extension, any
/// depth in a tar). A tar is read into memory once — neural stimulus sets are thousands of small images.
/// </summary>
public sealed class StimulusImages
{
    private static readonly string[] Extensions = [".png", ".jpg", ".jpeg"];
    private readonly Dictionary<string, Func<byte[]>> _images;

    private StimulusImages(string source, Dictionary<string, Func<byte[]>> images) => (Source, _images) = (source, images);

    /// <summary>The folder or tar the images come from.</summary>
    public string Source { get; }

    public IReadOnlyCollection<string> Ids => _images.Keys;

    public bool Contains(string stimulusId) => _images.ContainsKey(stimulusId);

    public byte[] ReadBytes(string stimulusId) =>
        _images.TryGetValue(stimulusId, out var read) ? read() : throw new NeuralDataException($"{Source}: no image for stimulus '{stimulusId}'");

    public static StimulusImages Open(string path)
    {
        var images = new Dictionary<string, Func<byte[]>>(StringComparer.Ordinal);
        if (Directory.Exists(path))
        {
            foreach (var file in Directory.EnumerateFiles(path).Order(StringComparer.Ordinal))
            {
                if (IdOf(file) is { } id) images.TryAdd(id, () => File.ReadAllBytes(file));
            }
            return new StimulusImages(path, images);
        }
        if (!File.Exists(path)) throw new NeuralDataException($"{path}: the stimulus image folder or tar does not exist");
        using var stream = File.OpenRead(path);
        using var reader = new TarReader(stream);
        while (reader.GetNextEntry() is { } entry)
        {
            if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile) || entry.DataStream is null) continue;
            if (IdOf(entry.Name) is not { } id) continue;
            using var buffer = new MemoryStream();
            entry.DataStream.CopyTo(buffer);
            var bytes = buffer.ToArray();
            images.TryAdd(id, () => bytes);
        }
        return new StimulusImages(path, images);
    }

    /// <summary>
    /// The images of <paramref name="ids"/> as a normalised float32 batch <c>[n, channels, size, size]</c> (resized when
    /// they are not <paramref name="size"/> pixels; see <see cref="Normalised"/>).
    /// </summary>
    public Tensor LoadBatch(IReadOnlyList<string> ids, int size, int channels = 3) => Normalised([.. ids.Select(ReadBytes)], size, channels);

    /// <summary>
    /// PNG/JPEG images as a normalised float32 batch <c>[n, channels, size, size]</c>: resized when needed, grey as the
    /// luma for one-channel models, normalised with the statistics the train stage uses by default
    /// (<see cref="ImageNormalization.Default"/>: ImageNet's for colour, 0.5/0.25 for grey).
    /// </summary>
    public static Tensor Normalised(IReadOnlyList<byte[]> images, int size, int channels = 3)
    {
        var norm = ImageNormalization.Default(channels);
        var plane = size * size;
        var data = new float[(long)images.Count * channels * plane];
        for (var i = 0; i < images.Count; i++)
        {
            var chw = Decode(images[i], size, channels);
            for (var c = 0; c < channels; c++)
            {
                for (var p = 0; p < plane; p++)
                {
                    data[((((long)i * channels) + c) * plane) + p] = (chw[(c * plane) + p] - norm.Mean[c]) / norm.Std[c];
                }
            }
        }
        return tensor(data, [images.Count, channels, size, size]);
    }

    private static float[] Decode(byte[] bytes, int size, int channels)
    {
        using var bitmap = ImageCodec.DecodeRgb(bytes) ?? throw new NeuralDataException("an image is not a decodable PNG or JPEG");
        if (bitmap.Width == size && bitmap.Height == size) return ImageCodec.DecodeChw(bytes, channels, out _, out _);
        using var resized = ImageCodec.Resize(bitmap, new SkiaSharp.SKSizeI(size, size));
        return ImageCodec.DecodeChw(ImageCodec.Encode(resized, ShardImageFormat.Png, 95), channels, out _, out _);
    }

    private static string? IdOf(string path)
    {
        var name = Path.GetFileName(path);
        var ext = Path.GetExtension(name);
        return Extensions.Contains(ext, StringComparer.OrdinalIgnoreCase) && !name.StartsWith('.') ? name[..^ext.Length] : null;
    }
}
