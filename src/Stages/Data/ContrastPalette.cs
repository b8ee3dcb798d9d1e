using SkiaSharp;

namespace Pipeline.Stages.Data;

/// <summary>
/// The colours of one synthetic scene whose object always stands out (<c>min_contrast</c> of the synthetic source): a
/// gap of width c at a random height splits the luma range into a low and a high band; the object's colours come from
/// one band, the background's two gradient colours and the occluders' from the other. So every object colour differs
/// from every background and occluder colour by at least c in luma (ITU-R BT.601, the weights grey shards and grey
/// models use), and a linear gradient between two background colours stays on its side of the gap too.
/// </summary>
internal sealed record ContrastPalette(SKColor Background1, SKColor Background2, SKColor ObjectBase, SKColor ObjectPattern, SKColor Occluder)
{
    /// <summary>The largest contrast that leaves both bands <see cref="MinBand"/> wide inside [Floor, Ceiling].</summary>
    public const double MaxContrast = Ceiling - Floor - (2 * MinBand);

    // Lumas stay off pure black and white, as the hard set's backgrounds (HSV value 0.1–0.9) do.
    private const double Floor = 0.05;
    private const double Ceiling = 0.95;
    private const double MinBand = 0.1;

    // Colours are drawn this far inside their band, so rounding each channel to a byte (≤ 0.5/255 of luma) keeps the gap.
    private const double Margin = 1.0 / 255;

    public static ContrastPalette Draw(ref DeterministicRandom rng, double minContrast)
    {
        if (minContrast is <= 0 or > MaxContrast) throw new ArgumentOutOfRangeException(nameof(minContrast), minContrast, $"must be in (0, {MaxContrast}]");
        var gapStart = rng.Range(Floor + MinBand, Ceiling - MinBand - minContrast);
        (double From, double To) low = (Floor, gapStart), high = (gapStart + minContrast, Ceiling);
        var (obj, background) = rng.Chance(0.5) ? (high, low) : (low, high);
        return new ContrastPalette(
            ColorWithLuma(ref rng, background), ColorWithLuma(ref rng, background),
            ColorWithLuma(ref rng, obj), ColorWithLuma(ref rng, obj),
            ColorWithLuma(ref rng, background));
    }

    /// <summary>BT.601 luma of a colour, 0..1.</summary>
    public static double Luma(SKColor c) => ((0.299 * c.Red) + (0.587 * c.Green) + (0.114 * c.Blue)) / 255;

    /// <summary>
    /// A random hue and saturation (20–100 %, as the hard set's colours) at a luma drawn from the band. A colour of hue
    /// h, saturation S and value V has luma V·(1 − S·(1 − Y_h)), Y_h the pure hue's luma: V is solved for the target,
    /// and where even V = 1 falls short (light blues, say) the saturation is lowered instead.
    /// </summary>
    private static SKColor ColorWithLuma(ref DeterministicRandom rng, (double From, double To) band)
    {
        var target = rng.Range(band.From + Margin, band.To - Margin);
        var hue = SKColor.FromHsv(rng.Range(0, 360), 100, 100);
        var saturation = (double)rng.Range(0.2, 1.0);
        var hueLuma = Luma(hue);
        var brightest = 1 - (saturation * (1 - hueLuma));
        double value = 1;
        if (target <= brightest) value = target / brightest;
        else saturation = (1 - target) / (1 - hueLuma);
        byte Channel(byte pure) => (byte)Math.Round(255 * value * (1 - (saturation * (1 - (pure / 255.0)))));
        return new SKColor(Channel(hue.Red), Channel(hue.Green), Channel(hue.Blue));
    }
}
