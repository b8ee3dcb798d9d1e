using Pipeline.Stages.Execution;

namespace Pipeline.Jobs.RunSpecs;

/// <summary>
/// The folders a run launched through the web API may read outside the artifact store (Pipeline:DataRoots). A path is
/// inside a root when, with every symbolic link along it resolved as the kernel would, it lies under that root (also
/// resolved): a link inside a root that points elsewhere is outside. The CLI passes no roots (a local user may read
/// their own files). The check happens where the run is launched; the data's own contents (links deep inside a dataset
/// folder) are trusted as whoever can write under a root placed them.
/// </summary>
public sealed class DataRoots(IReadOnlyList<string> roots)
{
    /// <summary>Symbolic links followed while resolving one path before it is refused (Linux's own limit, ELOOP).</summary>
    private const int MaxLinks = 40;

    private static readonly StringComparison PathComparison = OperatingSystem.IsWindows() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;

    public IReadOnlyList<string> Roots { get; } = roots;

    /// <summary>One error per external path of the plan that is not under a root, naming the field as the RunSpec does.</summary>
    public IReadOnlyList<ValidationError> Check(IEnumerable<PlannedStage> plan)
    {
        var resolvedRoots = Roots.Select(Resolve).OfType<string>().ToList();
        var listed = string.Join(", ", Roots);
        var errors = new List<ValidationError>();
        foreach (var stage in plan)
        {
            if (stage.Params is not IExternalInputs inputs) continue;
            foreach (var (field, path) in inputs.ExternalPaths().Distinct())
            {
                var at = $"stages.{stage.Name}.params.{field}";
                if (!Path.IsPathRooted(path))
                {
                    errors.Add(new(at, $"'{path}' is a relative path; give an absolute path under Pipeline:DataRoots ({listed})"));
                    continue;
                }
                var resolved = Resolve(path);
                if (resolved is not null && resolvedRoots.Any(root => IsUnder(resolved, root))) continue;
                var what = resolved is null ? $"'{path}' passes through too many symbolic links and"
                    : resolved != Path.TrimEndingDirectorySeparator(path) ? $"'{path}' resolves to '{resolved}', which" : $"'{path}'";
                errors.Add(new(at, $"{what} is outside Pipeline:DataRoots ({listed}); put the data under a data root or add its folder to Pipeline:DataRoots"));
            }
        }
        return errors;
    }

    /// <summary>
    /// realpath(3) for a path that may not exist (yet, or on this machine): each existing component that is a symbolic
    /// link is replaced by its target, so a '..' after a link climbs from the target as the kernel does (a lexical
    /// <see cref="Path.GetFullPath(string)"/> would not); components that do not exist are kept as written. Null when
    /// the links loop.
    /// </summary>
    public static string? Resolve(string absolutePath)
    {
        var root = Path.GetPathRoot(absolutePath)!;
        var pending = new Stack<string>(Components(absolutePath[root.Length..]).Reverse());
        var current = root;
        var links = 0;
        while (pending.TryPop(out var component))
        {
            if (component == ".") continue;
            if (component == "..")
            {
                current = Path.GetDirectoryName(current) ?? current;
                continue;
            }
            var next = Path.Join(current, component);
            if (new FileInfo(next).LinkTarget is not { } target)
            {
                current = next;
                continue;
            }
            if (++links > MaxLinks) return null;
            if (Path.IsPathRooted(target)) current = Path.GetPathRoot(target)!;
            foreach (var c in Components(Path.IsPathRooted(target) ? target[Path.GetPathRoot(target)!.Length..] : target).Reverse()) pending.Push(c);
        }
        return current;
    }

    private static IEnumerable<string> Components(string relative) =>
        relative.Split([Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar], StringSplitOptions.RemoveEmptyEntries);

    private static bool IsUnder(string path, string root)
    {
        var prefix = Path.EndsInDirectorySeparator(root) ? root : root + Path.DirectorySeparatorChar;
        return string.Equals(path, root, PathComparison) || path.StartsWith(prefix, PathComparison);
    }
}
