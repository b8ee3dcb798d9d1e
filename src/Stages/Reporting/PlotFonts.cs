using ScottPlot;

namespace Pipeline.Stages.Reporting;

/// <summary>
/// Makes ScottPlot draw text on Linux. SkiaSharp's "NoDependencies" native build has no fontconfig: its font manager
/// knows no families and every typeface it hands out has zero glyphs, so ScottPlot draws every label as nothing
/// (measured with SkiaSharp 4.155). Fonts loaded from a file do work, so the DejaVu files (Debian: fonts-dejavu-core)
/// are registered with ScottPlot and made its default. Without them the figures still render, without letters.
/// </summary>
public static class PlotFonts
{
    public const string Family = "DejaVu Sans";

    /// <summary>Where Debian's fonts-dejavu-core puts the regular and bold faces (the only ones the figures use).</summary>
    private static readonly (string Regular, string Bold)[] Files =
    [
        ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
        ("/usr/share/fonts/dejavu/DejaVuSans.ttf", "/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf"),
    ];

    private static readonly Lazy<bool> Ready = new(Register, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Registers the fonts once per process; false when none was found.</summary>
    public static bool Ensure() => Ready.Value;

    private static bool Register()
    {
        // Typefaces from Fonts.GetTypeface are ScottPlot's cached instances: never dispose them.
        if (!string.IsNullOrEmpty(Fonts.Default) && Fonts.GetTypeface(Fonts.Default, bold: false, italic: false).GlyphCount > 0) return true;
        foreach (var (regular, bold) in Files)
        {
            if (!File.Exists(regular)) continue;
            Fonts.AddFontFile(Family, regular, bold: false, italic: false);
            Fonts.AddFontFile(Family, File.Exists(bold) ? bold : regular, bold: true, italic: false);
            Fonts.Default = Family;
            Fonts.Sans = Family;
            return true;
        }
        return false;
    }
}
