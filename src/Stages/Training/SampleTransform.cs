using Pipeline.Stages.Data;
using SkiaSharp;

namespace Pipeline.Stages.Training;

/// <summary>
/// Encoded image bytes in, one normalized <c>[channels, size, size]</c> float block out: the eval transform (resize the
/// short side, centre-crop) or a training augmentation. Pure: the result depends only on the bytes, the options and
/// the per-sample seed, so any thread may render any sample.
/// </summary>
public sealed class SampleTransform
{
    private readonly int _size;
    private readonly int _channels;
    private readonly AugmentationParams _augmentation;
    private readonly AugmentationKind _kind;
    private readonly float[] _mean;
    private readonly float[] _std;

    /// <param name="train">False: the eval transform whatever <paramref name="augmentation"/>'s kind.</param>
    public SampleTransform(int imageSize, int channels, ImageNormalization normalization, AugmentationParams augmentation, bool train)
    {
        (_size, _channels, _augmentation) = (imageSize, channels, augmentation);
        _kind = train ? augmentation.Kind : AugmentationKind.None;
        _mean = [.. normalization.Mean];
        _std = [.. normalization.Std];
        EvalShortSide = Math.Max(imageSize, (int)Math.Round(imageSize / augmentation.EvalCropFraction));
    }

    /// <summary>Floats one sample takes in a batch: channels × size × size.</summary>
    public int SampleLength => _channels * _size * _size;

    /// <summary>The short side the eval transform resizes to before its centre crop.</summary>
    public int EvalShortSide { get; }

    /// <summary>
    /// Renders one sample into <paramref name="destination"/> (length <see cref="SampleLength"/>); <paramref name="seed"/>
    /// drives the augmentation and is ignored by the eval transform.
    /// </summary>
    /// <exception cref="InvalidDataException">The bytes are not a decodable PNG or JPEG.</exception>
    public void Apply(ReadOnlySpan<byte> encoded, ulong seed, Span<float> destination)
    {
        if (destination.Length != SampleLength)
            throw new ArgumentException($"needs {SampleLength} floats, got {destination.Length}", nameof(destination));
        var rng = new DeterministicRandom(seed);
        if (_kind == AugmentationKind.Natural)
        {
            // Decode big enough that even the smallest crop (min_scale of the area) is not enlarged much: a JPEG's
            // DCT downscale is only taken when it keeps that many pixels.
            var minShortSide = (int)Math.Ceiling(_size / Math.Sqrt(_augmentation.MinScale));
            using var decoded = Decode(encoded, minShortSide);
            var (top, left, height, width) = RandomResizedCropBox(decoded.Height, decoded.Width, _augmentation, ref rng);
            using var crop = new SKBitmap();
            if (!decoded.ExtractSubset(crop, SKRectI.Create(left, top, width, height)))
                throw new InvalidOperationException($"SkiaSharp could not crop {width}x{height} at ({left}, {top}) of a {decoded.Width}x{decoded.Height} image.");
            var resized = ImageCodec.Resize(crop, new SKSizeI(_size, _size));
            try
            {
                Write(resized, 0, 0, _augmentation.Flip && rng.Chance(0.5), destination);
            }
            finally
            {
                if (!ReferenceEquals(resized, crop)) resized.Dispose();
            }
            return;
        }

        using (var decoded = Decode(encoded, EvalShortSide))
        {
            var resized = ImageCodec.ResizeShortSide(decoded, EvalShortSide);
            try
            {
                // torchvision's center_crop: offsets round((extent - size) / 2), ties to even as in Python.
                var left = (int)Math.Round((resized.Width - _size) / 2.0);
                var top = (int)Math.Round((resized.Height - _size) / 2.0);
                var flip = _kind == AugmentationKind.Occluders && _augmentation.Flip && rng.Chance(0.5);
                Write(resized, left, top, flip, destination);
            }
            finally
            {
                if (!ReferenceEquals(resized, decoded)) resized.Dispose();
            }
        }
        if (_kind == AugmentationKind.Occluders) DrawOccluders(ref rng, destination);
    }

    /// <summary>
    /// torchvision's <c>RandomResizedCrop.get_params</c>: up to 10 draws of an area fraction (uniform in the scale
    /// range) and an aspect ratio (log-uniform); the first box that fits is placed uniformly. If none fits, the
    /// largest centred box whose aspect is within the ratio range. Returns the box in pixels.
    /// </summary>
    internal static (int Top, int Left, int Height, int Width) RandomResizedCropBox(int height, int width, AugmentationParams a, ref DeterministicRandom rng)
    {
        double area = (double)height * width;
        var (logMin, logMax) = (Math.Log(a.MinRatio), Math.Log(a.MaxRatio));
        for (var attempt = 0; attempt < 10; attempt++)
        {
            var targetArea = area * rng.Range(a.MinScale, a.MaxScale);
            var ratio = Math.Exp(rng.Range(logMin, logMax));
            // Math.Round ties to even, like Python's round().
            var w = (int)Math.Round(Math.Sqrt(targetArea * ratio));
            var h = (int)Math.Round(Math.Sqrt(targetArea / ratio));
            if (w > 0 && w <= width && h > 0 && h <= height)
            {
                var top = rng.Next(height - h + 1);
                var left = rng.Next(width - w + 1);
                return (top, left, h, w);
            }
        }
        var inRatio = (double)width / height;
        int cw, ch;
        if (inRatio < a.MinRatio)
            (cw, ch) = (width, Math.Max(1, Math.Min(height, (int)Math.Round(width / a.MinRatio))));
        else if (inRatio > a.MaxRatio)
            (cw, ch) = (Math.Max(1, Math.Min(width, (int)Math.Round(height * a.MaxRatio))), height);
        else
            (cw, ch) = (width, height);
        return ((height - ch) / 2, (width - cw) / 2, ch, cw);
    }

    private static SKBitmap Decode(ReadOnlySpan<byte> encoded, int minShortSide) =>
        ImageCodec.DecodeRgb(encoded, minShortSide) ?? throw new InvalidDataException("The image bytes are not a decodable PNG or JPEG.");

    /// <summary>Copies the size × size square at (left, top), mirrored if asked, as normalized channel-major floats.</summary>
    private void Write(SKBitmap image, int left, int top, bool flip, Span<float> destination)
    {
        if (image.ColorType != SKColorType.Rgba8888)
            throw new InvalidOperationException($"Expected RGBA8888 pixels, got {image.ColorType}.");
        using var pixmap = image.PeekPixels();
        var pixels = pixmap.GetPixelSpan();
        var rowBytes = pixmap.RowBytes;
        var plane = _size * _size;
        // Same arithmetic as ImageCodec.DecodeChw (scale to [0, 1], BT.601 luma for one channel), then (x - mean) / std.
        const float scale = 1f / 255f;
        for (var y = 0; y < _size; y++)
        {
            var row = pixels.Slice((top + y) * rowBytes + left * 4, _size * 4);
            var outRow = y * _size;
            for (var x = 0; x < _size; x++)
            {
                var sx = 4 * (flip ? _size - 1 - x : x);
                var (r, g, b) = (row[sx], row[sx + 1], row[sx + 2]);
                var o = outRow + x;
                if (_channels == 1)
                {
                    var grey = (r == g && g == b ? r : 0.299f * r + 0.587f * g + 0.114f * b) * scale;
                    destination[o] = (grey - _mean[0]) / _std[0];
                }
                else
                {
                    destination[o] = (r * scale - _mean[0]) / _std[0];
                    destination[plane + o] = (g * scale - _mean[1]) / _std[1];
                    destination[2 * plane + o] = (b * scale - _mean[2]) / _std[2];
                }
            }
        }
    }

    /// <summary>
    /// 1..max_occluders axis-aligned rectangles, each of a uniform grey level in [0, 1]. A flat fill (rather than noise)
    /// hides the object without adding texture the network could learn to key on; grey keeps it colour-neutral.
    /// </summary>
    private void DrawOccluders(ref DeterministicRandom rng, Span<float> destination)
    {
        var plane = _size * _size;
        var maxPixels = Math.Max(1, (int)(_augmentation.MaxOccluderArea * plane));
        var count = 1 + rng.Next(_augmentation.MaxOccluders);
        for (var k = 0; k < count; k++)
        {
            // Area up to max_occluder_area, aspect log-uniform in [1/3, 3]: bars as well as blocks.
            var area = rng.Range(0, _augmentation.MaxOccluderArea) * plane;
            var ratio = Math.Exp(rng.Range(-Math.Log(3), Math.Log(3)));
            var w = Math.Clamp((int)Math.Round(Math.Sqrt(area * ratio)), 1, _size);
            var h = Math.Clamp((int)Math.Round(Math.Sqrt(area / ratio)), 1, _size);
            h = Math.Max(1, Math.Min(h, maxPixels / w));
            var top = rng.Next(_size - h + 1);
            var left = rng.Next(_size - w + 1);
            var grey = (float)rng.NextDouble();
            for (var c = 0; c < _channels; c++)
            {
                var value = (grey - _mean[c]) / _std[c];
                for (var y = top; y < top + h; y++)
                    destination.Slice(c * plane + y * _size + left, w).Fill(value);
            }
        }
    }
}
