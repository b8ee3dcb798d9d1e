using Pipeline.Stages.Artifacts;

namespace Pipeline.Stages.Execution;

/// <summary>A text that changes when files outside the artifact store change: names, sizes and write times.</summary>
internal static class ExternalFiles
{
    public static string Fingerprint(params string?[] paths)
    {
        var lines = new List<string>();
        foreach (var path in paths.OfType<string>())
        {
            if (File.Exists(path)) lines.Add(Line(path, new FileInfo(path)));
            else if (Directory.Exists(path))
            {
                lines.AddRange(Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories).Select(f => Line(System.IO.Path.GetRelativePath(path, f), new FileInfo(f))));
            }
            else lines.Add($"missing:{path}");
        }
        lines.Sort(StringComparer.Ordinal);
        return Sha256Stream.Hex(System.Text.Encoding.UTF8.GetBytes(string.Join('\n', lines)));
    }

    private static string Line(string name, FileInfo f) => $"{name}\t{f.Length}\t{f.LastWriteTimeUtc.Ticks}";
}
