using Pipeline.Stages.Data;
using SkiaSharp;

namespace Pipeline.Stages.Tests.Data;

public sealed class ImageCodecTests
{
    private static byte[] Jpeg(int width, int height, SKColor color)
    {
        using var bitmap = new SKBitmap(width, height);
        bitmap.Erase(color);
        return ImageCodec.Encode(bitmap, ShardImageFormat.Jpg, 95);
    }

    [Fact]
    public void Large_jpeg_is_decoded_at_the_smallest_scale_that_keeps_the_short_side()
    {
        var bytes = Jpeg(400, 300, SKColors.Teal);

        using var full = ImageCodec.DecodeRgb(bytes)!;
        using var reduced = ImageCodec.DecodeRgb(bytes, minShortSide: 64)!;

        Assert.Equal((400, 300), (full.Width, full.Height));
        Assert.Equal((100, 75), (reduced.Width, reduced.Height));
    }

    [Theory]
    [InlineData(400, 300, 64, 85)]
    [InlineData(300, 400, 64, 85)]
    [InlineData(30, 20, 40, 60)]
    public void Resize_sets_the_short_side_and_keeps_the_aspect_and_colour(int width, int height, int shortSide, int longSide)
    {
        using var source = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul));
        source.Erase(new SKColor(200, 100, 50));

        using var resized = ImageCodec.ResizeShortSide(source, shortSide);

        Assert.Equal(shortSide, Math.Min(resized.Width, resized.Height));
        Assert.Equal(longSide, Math.Max(resized.Width, resized.Height));
        Assert.Equal(width > height, resized.Width > resized.Height);
        Assert.Equal(new SKColor(200, 100, 50), resized.GetPixel(resized.Width / 2, resized.Height / 2));
    }

    [Fact]
    public void Not_an_image_decodes_to_null()
    {
        Assert.Null(ImageCodec.DecodeRgb([]));
        Assert.Null(ImageCodec.DecodeRgb("hello"u8));
        var jpeg = Jpeg(64, 64, SKColors.Orange);
        Assert.Null(ImageCodec.DecodeRgb(jpeg.AsSpan(0, jpeg.Length / 2)));
    }

    [Fact]
    public void Chw_decode_is_channel_major_in_unit_range()
    {
        using var bitmap = new SKBitmap(new SKImageInfo(3, 2, SKColorType.Rgba8888, SKAlphaType.Premul));
        bitmap.Erase(new SKColor(255, 0, 51));
        var png = ImageCodec.Encode(bitmap, ShardImageFormat.Png, 0);

        var chw = ImageCodec.DecodeChw(png, 3, out var h, out var w);

        Assert.Equal((2, 3), (h, w));
        float[] expected = [1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0.2f, 0.2f, 0.2f, 0.2f, 0.2f, 0.2f];
        Assert.Equal(expected.Length, chw.Length);
        for (var i = 0; i < chw.Length; i++) Assert.Equal(expected[i], chw[i], 1e-6f);
    }
}
