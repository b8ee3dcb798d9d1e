using System.Globalization;

namespace Pipeline.Web.Components.Controls;

/// <summary>How the dashboard writes times, durations and sizes: invariant culture, UTC unless a zone is named.</summary>
public static class Formats
{
    public static string When(DateTime? utc) => utc is { } t ? t.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) + "Z" : "—";

    public static string Duration(TimeSpan? d) => d switch
    {
        null => "—",
        { TotalSeconds: < 60 } x => $"{x.TotalSeconds:0} s",
        { TotalMinutes: < 60 } x => $"{(int)x.TotalMinutes} min {x.Seconds} s",
        { } x => $"{(int)x.TotalHours} h {x.Minutes} min",
    };

    public static string Bytes(long n) => n switch
    {
        < 1024 => $"{n} B",
        < 1024 * 1024 => (n / 1024.0).ToString("0.0", CultureInfo.InvariantCulture) + " KiB",
        < 1024L * 1024 * 1024 => (n / 1024.0 / 1024).ToString("0.0", CultureInfo.InvariantCulture) + " MiB",
        _ => (n / 1024.0 / 1024 / 1024).ToString("0.00", CultureInfo.InvariantCulture) + " GiB",
    };

    public static string Percent(double fraction) => (fraction * 100).ToString("0", CultureInfo.InvariantCulture) + " %";

    /// <summary>Three significant figures, as the CLI prints numbers.</summary>
    public static string Number(double v) => Math.Abs(v) >= 1000 ? v.ToString("#,0", CultureInfo.InvariantCulture) : v.ToString("G3", CultureInfo.InvariantCulture);

    public static string Hours(double h) => h.ToString(h < 0.1 ? "0.000" : "0.00", CultureInfo.InvariantCulture);

    /// <summary>The download route of an artifact (filesystem: streamed by the host; Azure: a redirect to a short-lived SAS).</summary>
    public static string Download(long artifactId) => $"/api/artifacts/{artifactId}/download";

    public static bool IsImage(string path) =>
        path.EndsWith(".png", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".svg", StringComparison.OrdinalIgnoreCase);
}
