namespace Pipeline.Jobs.RunSpecs;

/// <summary>Presets are RunSpec files in presets/: found by name (copied beside the executable), or given as a path.</summary>
public static class Presets
{
    public static IReadOnlyList<string> Folders(string? configured) =>
        [.. new[] { configured, Path.Combine(AppContext.BaseDirectory, "presets"), Path.Combine(Directory.GetCurrentDirectory(), "presets") }
            .Where(f => f is not null && Directory.Exists(f)).Select(f => Path.GetFullPath(f!)).Distinct()];

    public static string Resolve(string nameOrPath, string? configuredFolder)
    {
        if (File.Exists(nameOrPath)) return Path.GetFullPath(nameOrPath);
        foreach (var folder in Folders(configuredFolder))
        {
            var candidate = Path.Combine(folder, nameOrPath.EndsWith(".json", StringComparison.Ordinal) ? nameOrPath : nameOrPath + ".json");
            if (File.Exists(candidate)) return candidate;
        }
        var known = Folders(configuredFolder).SelectMany(f => Directory.GetFiles(f, "*.json")).Select(Path.GetFileNameWithoutExtension).Distinct().Order();
        throw new RunSpecException([new Stages.Execution.ValidationError("--preset", $"no preset or file '{nameOrPath}'; presets: {string.Join(", ", known)}")]);
    }
}
