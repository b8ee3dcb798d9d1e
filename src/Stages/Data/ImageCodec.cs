using SkiaSharp;
using TorchSharp;

namespace Pipeline.Stages.Data;

/// <summary>
/// Image decode, resize and encode for shards (SkiaSharp), and the decode to CHW floats that training uses. Colour
/// images are RGB (alpha is dropped: a translucent pixel ends up composited on black); grey ones stay one channel.
/// </summary>
public static class ImageCodec
{
    /// <summary>Images with more decoded pixels than this are refused (a crafted file must not exhaust memory).</summary>
    public const long MaxPixels = 128L << 20;

    /// <summary>
    /// Decodes JPEG/PNG bytes to an RGB(A) bitmap, or returns null when the bytes are not a decodable image (or one
    /// larger than <see cref="MaxPixels"/>). With <paramref name="minShortSide"/>, a JPEG is decoded at the smallest of
    /// 1/8, 1/4, 1/2 scale that keeps its short side at least that long: the DCT-domain downscale is both faster and
    /// cleaner than resizing full-size pixels.
    /// </summary>
    public static SKBitmap? DecodeRgb(ReadOnlySpan<byte> bytes, int? minShortSide = null)
    {
        if (bytes.IsEmpty) return null;
        using var data = SKData.CreateCopy(bytes);
        using var codec = SKCodec.Create(data);
        if (codec is null || codec.Info.Width <= 0 || codec.Info.Height <= 0) return null;
        var size = codec.Info.Size;
        if (minShortSide is { } min)
        {
            foreach (var scale in new[] { 0.125f, 0.25f, 0.5f })
            {
                var scaled = codec.GetScaledDimensions(scale);
                if (Math.Min(scaled.Width, scaled.Height) >= min && scaled.Width < size.Width)
                {
                    size = scaled;
                    break;
                }
            }
        }
        if ((long)size.Width * size.Height > MaxPixels) return null;
        var info = new SKImageInfo(size.Width, size.Height, SKColorType.Rgba8888, SKAlphaType.Premul);
        var bitmap = new SKBitmap(info);
        var result = codec.GetPixels(info, bitmap.GetPixels());
        // A truncated JPEG decodes partly (IncompleteInput) and would be padded with grey: treat it as corrupt.
        if (result != SKCodecResult.Success)
        {
            bitmap.Dispose();
            return null;
        }
        return bitmap;
    }

    /// <summary>The size whose shorter side is <paramref name="shortSide"/>, keeping the aspect ratio.</summary>
    public static SKSizeI ShortSideSize(int width, int height, int shortSide)
    {
        if (width <= height)
            return new SKSizeI(shortSide, Math.Max(1, (int)Math.Round((double)height * shortSide / width)));
        return new SKSizeI(Math.Max(1, (int)Math.Round((double)width * shortSide / height)), shortSide);
    }

    /// <summary>
    /// Resizes so the shorter side is <paramref name="shortSide"/>; returns the input itself when it already is.
    /// Shrinking halves the image (2x2 averages) while it is over twice the target, then finishes with the Mitchell
    /// cubic, which is also used to enlarge: little aliasing, and far cheaper than a trilinear mipmap.
    /// </summary>
    public static SKBitmap ResizeShortSide(SKBitmap source, int shortSide) =>
        Resize(source, ShortSideSize(source.Width, source.Height, shortSide));

    /// <summary>
    /// Resizes to exactly <paramref name="size"/> (the aspect may change, as in a random-resized crop), with the same
    /// halving-then-Mitchell scheme as <see cref="ResizeShortSide"/>; returns the input itself when it already has that size.
    /// </summary>
    public static SKBitmap Resize(SKBitmap source, SKSizeI size)
    {
        var current = source;
        try
        {
            while (current.Width >= 2 * size.Width && current.Height >= 2 * size.Height)
                Replace(ref current, Scale(current, new SKSizeI(current.Width / 2, current.Height / 2), new SKSamplingOptions(SKFilterMode.Linear)), source);
            if (current.Width != size.Width || current.Height != size.Height)
                Replace(ref current, Scale(current, size, new SKSamplingOptions(SKCubicResampler.Mitchell)), source);
            var result = current;
            current = source;
            return result;
        }
        finally
        {
            if (!ReferenceEquals(current, source)) current.Dispose();
        }
    }

    private static void Replace(ref SKBitmap current, SKBitmap next, SKBitmap keep)
    {
        if (!ReferenceEquals(current, keep)) current.Dispose();
        current = next;
    }

    private static SKBitmap Scale(SKBitmap source, SKSizeI size, SKSamplingOptions sampling)
    {
        var target = new SKBitmap(source.Info.WithSize(size.Width, size.Height));
        using var src = source.PeekPixels();
        using var dst = target.PeekPixels();
        if (!src.ScalePixels(dst, sampling))
        {
            target.Dispose();
            throw new InvalidOperationException($"SkiaSharp could not resize a {source.ColorType} image.");
        }
        return target;
    }

    /// <summary>Encodes as PNG (lossless) or JPEG; colour is written as RGB without alpha, grey as one channel.</summary>
    public static byte[] Encode(SKBitmap bitmap, ShardImageFormat format, int jpegQuality)
    {
        using var pixels = bitmap.PeekPixels();
        // Declaring the pixels opaque makes the PNG encoder write RGB (not RGBA) and the JPEG encoder ignore alpha.
        using var opaque = new SKPixmap(pixels.Info.WithAlphaType(SKAlphaType.Opaque), pixels.GetPixels(), pixels.RowBytes);
        using var data = format == ShardImageFormat.Jpg
            ? opaque.Encode(new SKJpegEncoderOptions(jpegQuality))
            : opaque.Encode(new SKPngEncoderOptions(SKPngEncoderFilterFlags.AllFilters, 6));
        return data?.ToArray() ?? throw new InvalidOperationException($"SkiaSharp could not encode a {bitmap.ColorType} image as {format}.");
    }

    /// <summary>
    /// Decodes PNG/JPEG bytes to channel-major floats in [0, 1] (<c>[channels, height, width]</c>). One channel takes
    /// the luma of a colour image (ITU-R BT.601 weights); three channels replicate a grey one.
    /// </summary>
    public static float[] DecodeChw(ReadOnlySpan<byte> bytes, int channels, out int height, out int width)
    {
        if (channels is not (1 or 3)) throw new ArgumentOutOfRangeException(nameof(channels), channels, "must be 1 or 3");
        using var bitmap = DecodeRgb(bytes) ?? throw new InvalidDataException("The image bytes are not a decodable PNG or JPEG.");
        (height, width) = (bitmap.Height, bitmap.Width);
        var plane = height * width;
        var chw = new float[channels * plane];
        var rgba = bitmap.GetPixelSpan();
        const float scale = 1f / 255f;
        for (var p = 0; p < plane; p++)
        {
            var (r, g, b) = (rgba[4 * p], rgba[4 * p + 1], rgba[4 * p + 2]);
            if (channels == 1)
            {
                chw[p] = (r == g && g == b ? r : 0.299f * r + 0.587f * g + 0.114f * b) * scale;
            }
            else
            {
                chw[p] = r * scale;
                chw[plane + p] = g * scale;
                chw[2 * plane + p] = b * scale;
            }
        }
        return chw;
    }

    /// <summary><see cref="DecodeChw"/> as a float32 tensor of shape <c>[channels, height, width]</c>.</summary>
    public static torch.Tensor DecodeTensor(ReadOnlySpan<byte> bytes, int channels)
    {
        var chw = DecodeChw(bytes, channels, out var height, out var width);
        return torch.tensor(chw, [channels, height, width]);
    }
}
