using System.Text.RegularExpressions;
using Pipeline.Stages.Execution;

namespace Pipeline.Jobs.RunSpecs;

/// <summary>Presets are RunSpec files in presets/: found by name (copied beside the executable), or given as a path.</summary>
public static partial class Presets
{
    [GeneratedRegex("^[a-z0-9][a-z0-9_.-]{0,63}$")]
    private static partial Regex NamePattern();

    public static IReadOnlyList<string> Folders(string? configured) =>
        [.. new[] { configured, Path.Combine(AppContext.BaseDirectory, "presets"), Path.Combine(Directory.GetCurrentDirectory(), "presets") }
            .Where(f => f is not null && Directory.Exists(f)).Select(f => Path.GetFullPath(f!)).Distinct()];

    public static IReadOnlyList<string> Names(string? configured) =>
        [.. Folders(configured).SelectMany(f => Directory.GetFiles(f, "*.json")).Select(f => Path.GetFileNameWithoutExtension(f)!).Distinct().Order()];

    /// <summary>
    /// The file behind a preset name; with <paramref name="allowPaths"/> (the CLI, not the web API) also any RunSpec file.
    /// </summary>
    public static string Resolve(string nameOrPath, string? configuredFolder, bool allowPaths)
    {
        if (allowPaths && File.Exists(nameOrPath)) return Path.GetFullPath(nameOrPath);
        if (NamePattern().IsMatch(nameOrPath))
        {
            foreach (var folder in Folders(configuredFolder))
            {
                var candidate = Path.Combine(folder, nameOrPath.EndsWith(".json", StringComparison.Ordinal) ? nameOrPath : nameOrPath + ".json");
                if (File.Exists(candidate)) return candidate;
            }
        }
        throw new RunSpecException([new ValidationError("preset", $"no preset '{nameOrPath}'; presets: {string.Join(", ", Names(configuredFolder))}")]);
    }
}
