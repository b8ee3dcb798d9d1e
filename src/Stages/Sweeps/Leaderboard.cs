using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using CsvHelper;

namespace Pipeline.Stages.Sweeps;

/// <summary>What a search optimised, as <c>leaderboard.json</c> writes it.</summary>
public sealed record LeaderboardObjective(string Of, string Metric, string Direction)
{
    [JsonIgnore]
    public bool Maximize => Direction == "maximize";
}

/// <summary>
/// One trial of a search on the leaderboard. <see cref="Rank"/>: 1 for the best completed trial; null for a trial
/// that did not complete with a value (pruned, failed, cancelled, or completed with no finite objective), whose value —
/// if any — is not comparable with a final one. <see cref="Parameters"/>: the trained model's parameter count, null when
/// the trial's artifacts do not say.
/// </summary>
public sealed record LeaderboardRow
{
    public int? Rank { get; init; }
    public required int Trial { get; init; }
    public required string Status { get; init; }
    public double? Objective { get; init; }
    public long? PrunedAtStep { get; init; }
    public long? Parameters { get; init; }
    public double? WallSeconds { get; init; }

    /// <summary>The trial's active parameters, path → value.</summary>
    public required JsonObject Assignment { get; init; }
    public string? Error { get; init; }

    /// <summary>The trial's stages in the run (its train stage first).</summary>
    public required IReadOnlyList<string> Stages { get; init; }

    /// <summary>The model spec's name, and the output holding the whole spec (<c>specs/trial-NN.json</c>); null without a sidecar.</summary>
    public string? Model { get; init; }
    public string? SpecFile { get; init; }

    [JsonIgnore]
    public bool HasObjective => Objective is { } v && double.IsFinite(v);
}

/// <summary>
/// What <c>leaderboard.json</c> holds: a search's trials ranked best first (<see cref="Rank"/>), the counts by status, the
/// best trial, the Pareto front of objective against parameter count (<see cref="ParetoFront"/>), and what could not be
/// read. The ranking and the front are pure functions of the rows, tested on their own.
/// </summary>
public sealed record Leaderboard
{
    public static readonly IReadOnlyList<string> Statuses = ["completed", "pruned", "failed", "cancelled"];

    public required string Search { get; init; }
    public required string Strategy { get; init; }
    public required LeaderboardObjective Objective { get; init; }

    /// <summary>Trials by status: always the four of <see cref="Statuses"/>, then any other status met.</summary>
    public required IReadOnlyDictionary<string, int> Counts { get; init; }

    /// <summary>The first row when it is ranked (a completed trial), else null.</summary>
    public LeaderboardRow? Best { get; init; }

    /// <summary>The searched parameter paths in the space's order (then any other path an assignment holds): the CSV's last columns.</summary>
    public required IReadOnlyList<string> Searched { get; init; }

    /// <summary>The trial numbers on the Pareto front, fewest parameters first.</summary>
    public required IReadOnlyList<int> ParetoFront { get; init; }

    public required IReadOnlyList<LeaderboardRow> Rows { get; init; }

    /// <summary>Per trial, what could not be read (its cell is empty), as logged.</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];

    public const string CsvHeader = "rank,trial,status,objective,parameters,wall_seconds,pruned_at_step";

    /// <summary>
    /// The rows in their order, best first: completed trials with a finite objective by that objective in the objective's
    /// direction (ties: the lower trial number first), ranked 1, 2, …; then completed trials without one by trial number;
    /// then pruned trials, the deepest rung first (the largest <see cref="LeaderboardRow.PrunedAtStep"/>), then by their
    /// value at that rung in the objective's direction; then every other status (failed, cancelled) by trial number.
    /// Only the first group is ranked: a pruned trial's value at an earlier rung is not comparable with a final one.
    /// </summary>
    public static IReadOnlyList<LeaderboardRow> Rank(IEnumerable<LeaderboardRow> rows, bool maximize)
    {
        // Lower sorts first: "better" becomes a smaller key whichever the direction; a missing value sorts last.
        double Key(LeaderboardRow r) => r.HasObjective ? maximize ? -r.Objective!.Value : r.Objective!.Value : double.PositiveInfinity;
        static int Group(LeaderboardRow r) => r.Status switch
        {
            "completed" when r.HasObjective => 0,
            "completed" => 1,
            "pruned" => 2,
            _ => 3,
        };
        // Among pruned trials the rung comes before the value: a trial that earned more steps beat others at every rung it passed.
        var ordered = rows
            .OrderBy(Group)
            .ThenByDescending(r => Group(r) == 2 ? r.PrunedAtStep ?? long.MinValue : 0)
            .ThenBy(r => Group(r) is 0 or 2 ? Key(r) : 0)
            .ThenBy(r => r.Trial);
        var rank = 0;
        return [.. ordered.Select(r => r with { Rank = Group(r) == 0 ? ++rank : null })];
    }

    /// <summary>
    /// The completed trials that no other completed trial dominates — more accurate (in the objective's direction: a higher
    /// value when maximising, a lower one when minimising) with no more parameters, or as good with fewer — among those with
    /// a finite objective and a known parameter count; fewest parameters first. Two trials with the same count and value
    /// are both on it.
    /// </summary>
    public static IReadOnlyList<LeaderboardRow> Pareto(IEnumerable<LeaderboardRow> rows, bool maximize)
    {
        var candidates = rows.Where(r => r.Status == "completed" && r.HasObjective && r.Parameters is > 0).ToList();
        bool AtLeastAsGood(double a, double b) => maximize ? a >= b : a <= b;
        bool Dominates(LeaderboardRow a, LeaderboardRow b) =>
            a.Parameters <= b.Parameters && AtLeastAsGood(a.Objective!.Value, b.Objective!.Value)
            && (a.Parameters < b.Parameters || a.Objective!.Value != b.Objective!.Value);
        return [.. candidates.Where(c => !candidates.Any(o => Dominates(o, c)))
            .OrderBy(r => r.Parameters).ThenBy(r => maximize ? -r.Objective!.Value : r.Objective!.Value).ThenBy(r => r.Trial)];
    }

    /// <summary>
    /// One row per trial in the leaderboard's order: <see cref="CsvHeader"/>, then one column per searched path (empty
    /// where the parameter was inactive in that trial; strings as written, other values as JSON). CsvHelper writes it:
    /// RFC 4180 quoting (a choice's string value may hold a comma or a quote) and CRLF line ends.
    /// </summary>
    public string ToCsv()
    {
        using var text = new StringWriter(CultureInfo.InvariantCulture);
        using (var csv = new CsvWriter(text, CultureInfo.InvariantCulture))
        {
            foreach (var column in CsvHeader.Split(',').Concat(Searched)) csv.WriteField(column);
            csv.NextRecord();
            foreach (var r in Rows)
            {
                csv.WriteField(Number(r.Rank));
                csv.WriteField(Number(r.Trial));
                csv.WriteField(r.Status);
                csv.WriteField(r.Objective is { } o ? o.ToString("R", CultureInfo.InvariantCulture) : "");
                csv.WriteField(Number(r.Parameters));
                csv.WriteField(r.WallSeconds is { } w ? w.ToString("R", CultureInfo.InvariantCulture) : "");
                csv.WriteField(Number(r.PrunedAtStep));
                foreach (var path in Searched) csv.WriteField(r.Assignment.TryGetPropertyValue(path, out var v) ? Value(v) : "");
                csv.NextRecord();
            }
        }
        return text.ToString();

        static string Number(long? n) => n?.ToString(CultureInfo.InvariantCulture) ?? "";
    }

    /// <summary>An assignment's value as text: a string as written, anything else as its JSON.</summary>
    public static string Value(JsonNode? value) =>
        value is null ? "" : value.GetValueKind() == JsonValueKind.String ? value.GetValue<string>() : value.ToJsonString();
}
