using System.Globalization;
using System.Text.Json;
using Pipeline.Jobs.RunStore;
using Pipeline.Stages;
using Pipeline.Jobs.Runs;

namespace Pipeline.Jobs.Cli;

/// <summary>How the CLI prints: tables for people, JSON (--json) for scripts; exit codes 0 ok, 1 run failed, 2 bad input.</summary>
public static class CliOutput
{
    public const int Ok = 0;
    public const int RunFailed = 1;
    public const int BadInput = 2;

    public static void Json<T>(T value) => Console.Out.WriteLine(JsonSerializer.Serialize(value, PipelineJson.Options));

    public static int Error(string message, int code = BadInput)
    {
        Console.Error.WriteLine(message);
        return code;
    }

    public static void PrintRun(RunDetail run)
    {
        Console.WriteLine($"run {run.Id} '{run.Name}'{(run.Preset is null ? "" : $" (preset {run.Preset})")}: {run.Status}");
        foreach (var s in run.Stages)
        {
            var deps = s.DependsOn.Count == 0 ? "" : $" <- {string.Join(", ", s.DependsOn)}";
            Console.WriteLine($"  stage {s.Id,-5} {s.Name,-20} {s.Kind,-10} {s.Status,-10} attempt {s.Attempt}  {s.Progress,4:P0}{deps}");
            if (s.Worker is not null && s.Status == RunStore.StageStatus.Running) Console.WriteLine($"        worker {s.Worker}");
            if (s.CachedFromStageId is not null) Console.WriteLine($"        reused outputs of stage {s.CachedFromStageId}");
            if (s.Error is not null) Console.WriteLine($"        error: {s.Error}");
            foreach (var a in s.Artifacts) Console.WriteLine($"        {a.Path}  {a.Bytes:N0} B  sha256 {a.Sha256[..16]}…");
        }
    }

    /// <summary>
    /// The end of `run --wait`: a table of each stage's status and headline figures, then the files a user can open
    /// (absolute local paths) and where the rest is.
    /// </summary>
    public static void PrintResults(RunResultsView view, TextWriter? output = null)
    {
        var w = output ?? Console.Out;
        w.WriteLine();
        w.WriteLine($"run {view.RunId} '{view.Name}'{(view.Preset is null ? "" : $" (preset {view.Preset})")}: {view.Status}");
        w.WriteLine();
        WriteTable(w, "  ", ["stage", "kind", "status", "headline"],
            view.Stages.Select(s => (IReadOnlyList<string>)[s.Stage, s.Kind, s.Status.ToString().ToLowerInvariant(),
                s.Headlines.Count == 0 ? "—" : string.Join(" · ", s.Headlines.Select(h => h.Text))]));
        foreach (var s in view.Stages.Where(s => s.Error is not null)) w.WriteLine($"  {s.Stage}: {FirstLine(s.Error!)}");
        foreach (var (stage, board) in view.Leaderboards) PrintLeaderboard(w, stage, board);
        if (view.Status is RunStatus.Failed or RunStatus.Cancelled) w.WriteLine($"Continue it with 'pipeline runs retry {view.RunId} --wait' once the cause is fixed.");

        var withFiles = view.Stages.Where(s => s.Files.Count > 0 || s.Elsewhere.Count > 0 || s.Notes.Count > 0).ToList();
        if (withFiles.Count == 0) return;
        w.WriteLine();
        w.WriteLine(view.CopiedTo is null
            ? $"Files ({view.StoreKind} store)"
            : $"Files (figures and results up to {Bytes(RunResults.SmallFileBytes)} copied from the {view.StoreKind} store to {view.CopiedTo})");
        var width = withFiles.Max(s => s.Stage.Length);
        foreach (var s in withFiles)
        {
            var lines = s.Files.ToList();
            if (s.Elsewhere.Count > 0)
            {
                lines.Add(view.CopiedTo is not null ? $"in the store only: {Listing(s.Elsewhere)}"
                    : s.Files.Count > 0 ? $"beside them: {Listing(s.Elsewhere)}"
                    : $"in {s.Folder}{Path.DirectorySeparatorChar}: {Listing(s.Elsewhere)}");
            }
            lines.AddRange(s.Notes);
            for (var i = 0; i < lines.Count; i++) w.WriteLine($"  {(i == 0 ? s.Stage : "").PadRight(width)}  {lines[i]}");
        }
        if (view.CopiedTo is not null && view.Stages.Any(s => s.Elsewhere.Count > 0))
        {
            w.WriteLine($"The rest: 'pipeline artifacts list {view.RunId}', then 'pipeline artifacts get {view.RunId} NAME [--out PATH]'.");
        }
    }

    /// <summary>How many trials `run --wait` lists of a leaderboard (all of them are in its leaderboard.csv).</summary>
    public const int LeaderboardRows = 10;

    private static void PrintLeaderboard(TextWriter w, string stage, Stages.Sweeps.Leaderboard board)
    {
        var o = board.Objective;
        w.WriteLine();
        w.WriteLine($"{stage}: search '{board.Search}' ({board.Strategy}), {o.Direction} {o.Metric} of {o.Of}; " +
                    string.Join(", ", board.Counts.Where(c => c.Value > 0).Select(c => $"{c.Value} {c.Key}")) +
                    (board.Rows.Count > LeaderboardRows ? $"; the best {LeaderboardRows} of {board.Rows.Count}" : ""));
        WriteTable(w, "  ", ["rank", "trial", "status", o.Metric, "parameters", .. board.Searched],
            board.Rows.Take(LeaderboardRows).Select(r => (IReadOnlyList<string>)[
                r.Rank?.ToString(CultureInfo.InvariantCulture) ?? "—", r.Trial.ToString(CultureInfo.InvariantCulture),
                r.Status + (r.PrunedAtStep is { } at ? $" at {at}" : ""),
                r.Objective is { } v && double.IsFinite(v) ? Headlines.Metric(o.Metric, v) : "—",
                r.Parameters is { } n ? Headlines.Compact(n) : "—",
                .. board.Searched.Select(path => r.Assignment.TryGetPropertyValue(path, out var value) ? Shown(value) : "—")]));
    }

    private static string Shown(System.Text.Json.Nodes.JsonNode? value) =>
        value is System.Text.Json.Nodes.JsonValue v && v.GetValueKind() == JsonValueKind.Number
            ? v.GetValue<double>().ToString("G4", CultureInfo.InvariantCulture)
            : value is System.Text.Json.Nodes.JsonValue s && s.GetValueKind() == JsonValueKind.String ? s.GetValue<string>() : value?.ToJsonString() ?? "—";

    /// <summary>`runs list`: one row per run with its headline figure and the overrides it was launched with.</summary>
    public static void PrintRunList(IReadOnlyList<RunSummary> runs, TextWriter? output = null)
    {
        var w = output ?? Console.Out;
        if (runs.Count == 0)
        {
            w.WriteLine("No runs yet. Launch one with: pipeline run --preset smoke --wait");
            return;
        }
        WriteTable(w, "", ["id", "status", "stages", "created (UTC)", "name", "headline", "overrides"], runs.Select(r => (IReadOnlyList<string>)[
            r.Id.ToString(CultureInfo.InvariantCulture), r.Status.ToString(), $"{r.StagesDone}/{r.Stages}", $"{r.CreatedAt:yyyy-MM-dd HH:mm}", r.Name,
            r.Headline is { } h ? $"{h.Text} ({h.Stage})" : "—", r.Overrides.Count == 0 ? "—" : string.Join(" ", r.Overrides.Select(o => $"--set {o}"))]),
            rightAligned: 1);
    }

    /// <summary>`runs compare`: a row per key, a column per run, stages separated by a blank line.</summary>
    public static void PrintComparison(IReadOnlyList<RunDetail> runs, IReadOnlyList<ComparedValue> keys, bool all, TextWriter? output = null)
    {
        var w = output ?? Console.Out;
        var header = (IReadOnlyList<string>)["key", .. runs.Select(r => $"run {r.Id} '{r.Name}'")];
        var status = (IReadOnlyList<string>)["status", .. runs.Select(r => r.Status.ToString())];
        var rows = new List<IReadOnlyList<string>> { status };
        string? group = null;
        foreach (var k in keys)
        {
            var stage = RunComparison.StageOf(k.Key);
            if (group is not null && stage != group) rows.Add([]);
            group = stage;
            rows.Add([k.Key, .. k.Values.Select(Shown)]);
        }
        WriteTable(w, "", header, rows);
        if (!all && keys.Count == 0) w.WriteLine($"No params or metrics differ between runs {string.Join(", ", runs.Select(r => r.Id))}; --all lists them all.");
        else if (!all) w.WriteLine("Only what differs (— = the run has no such key); --all lists every key.");
    }

    // Fractional numbers to 6 significant digits for reading (the comparison itself and --json use every digit).
    private static string Shown(string? value) =>
        value is null ? "—"
        : value.Contains('.', StringComparison.Ordinal) && double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var d)
            ? d.ToString("G6", CultureInfo.InvariantCulture)
            : value;

    /// <summary>Columns padded to their widest cell (the last one left ragged); an empty row prints as a blank line.</summary>
    public static void WriteTable(TextWriter w, string indent, IReadOnlyList<string> headers, IEnumerable<IReadOnlyList<string>> rows, int rightAligned = 0)
    {
        var all = rows.ToList();
        var widths = headers.Select((h, i) => all.Where(r => r.Count > i).Select(r => r[i].Length).Append(h.Length).Max()).ToArray();
        foreach (var row in all.Prepend(headers))
        {
            if (row.Count == 0)
            {
                w.WriteLine();
                continue;
            }
            var cells = row.Select((c, i) => i == row.Count - 1 ? c : i < rightAligned ? c.PadLeft(widths[i]) : c.PadRight(widths[i]));
            w.WriteLine((indent + string.Join("  ", cells)).TrimEnd());
        }
    }

    private static string Listing(IReadOnlyList<ArtifactView> artifacts)
    {
        static string Name(ArtifactView a) => $"{Path.GetFileName(a.Path)} ({Bytes(a.Bytes)})";
        return artifacts.Count <= 4
            ? string.Join(", ", artifacts.Select(Name))
            : $"{string.Join(", ", artifacts.Take(3).Select(Name))} and {artifacts.Count - 3} more ({Bytes(artifacts.Sum(a => a.Bytes))} in all)";
    }

    /// <summary>A size for people: 1,536 → "1.5 KiB".</summary>
    public static string Bytes(long bytes) => bytes switch
    {
        < 1024 => $"{bytes} B",
        < 1024 * 1024 => $"{bytes / 1024.0:0.#} KiB",
        < 1024L * 1024 * 1024 => $"{bytes / (1024.0 * 1024):0.#} MiB",
        _ => $"{bytes / (1024.0 * 1024 * 1024):0.##} GiB",
    };

    private static string FirstLine(string text)
    {
        var line = text.Split('\n', 2)[0];
        return line.Length <= 200 ? line : line[..200] + "…";
    }
}
