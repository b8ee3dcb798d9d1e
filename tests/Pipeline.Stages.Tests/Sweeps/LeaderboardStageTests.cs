using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Xml.Linq;
using CsvHelper;
using Microsoft.Extensions.Logging;
using Pipeline.Stages.Artifacts;
using Pipeline.Stages.Execution;
using Pipeline.Stages.Models;
using Pipeline.Stages.Models.Checkpoints;
using Pipeline.Stages.Sweeps;
using Pipeline.Stages.Tests.Data;
using SkiaSharp;
using static TorchSharp.torch;

namespace Pipeline.Stages.Tests.Sweeps;

/// <summary>
/// A search of nine trials (five completed, two pruned at different rungs, one failed, one cancelled) over a learning rate
/// (log_uniform), a model preset (choice) and, for the ConvRNN only, its time steps (int), written to a real store: each
/// trial's train stage with a real metrics.json and model sidecar (pruned trials only a summary), then trials.json.
/// </summary>
public sealed class LeaderboardStageTests : IDisposable
{
    private readonly StageTestHarness _harness = new();

    /// <summary>(trial, status, top-1, parameters, pruned at, learning rate, preset, steps).</summary>
    private static readonly (int Trial, string Status, double? Top1, long? Parameters, long? PrunedAt, double Lr, string Preset, int? Steps)[] Plan =
    [
        (0, "completed", 0.60, 1_000_000, null, 1e-3, "basenet", null),
        (1, "completed", 0.55, 2_000_000, null, 1e-2, "rgc-shallow", 8),
        (2, "completed", 0.72, 4_000_000, null, 3e-3, "rgc-shallow", 12),
        (3, "pruned", 0.40, 3_000_000, 200, 5e-2, "basenet", null),
        (4, "completed", 0.70, 8_000_000, null, 5e-4, "rgc-shallow", 10),
        (5, "failed", null, null, null, 9e-2, "basenet", null),
        (6, "completed", 0.45, 500_000, null, 2e-4, "basenet", null),
        (7, "pruned", 0.35, 2_500_000, 400, 2e-2, "rgc-shallow", 6),
        (8, "cancelled", null, null, null, 4e-3, "basenet", null),
    ];

    private static readonly JsonObject Space = JsonNode.Parse("""
        {
          "optimizer.learning_rate": { "kind": "log_uniform", "low": 1e-4, "high": 1e-1 },
          "model.preset": { "kind": "choice", "values": ["basenet", "rgc-shallow"] },
          "model.time.steps": { "kind": "int", "low": 4, "high": 12, "when": { "path": "model.preset", "in": ["rgc-shallow"] } }
        }
        """)!.AsObject();

    public void Dispose() => _harness.Dispose();

    [Fact]
    public async Task Completed_trials_rank_by_objective_then_pruned_by_rung_then_failed_and_cancelled_by_number()
    {
        var (result, board) = await RunAsync(await WriteSearchAsync());

        Assert.Equal([2, 4, 0, 1, 6, 7, 3, 5, 8], board.Rows.Select(r => r.Trial));
        Assert.Equal([1, 2, 3, 4, 5, null, null, null, null], board.Rows.Select(r => r.Rank));
        Assert.Equal(new Dictionary<string, int> { ["completed"] = 5, ["pruned"] = 2, ["failed"] = 1, ["cancelled"] = 1 }, board.Counts);
        Assert.Equal((2, 0.72), (board.Best!.Trial, board.Best.Objective!.Value));
        Assert.Equal(new LeaderboardObjective("train", "top1", "maximize"), board.Objective);
        // Parameters from metrics.json, or from a pruned trial's summary; specs from the sidecars of the trials that trained to the end.
        var byTrial = board.Rows.ToDictionary(r => r.Trial);
        Assert.Equal(8_000_000, byTrial[4].Parameters);
        Assert.Equal(3_000_000, byTrial[3].Parameters);
        Assert.Null(byTrial[5].Parameters);
        Assert.Equal(("rgc-shallow", "specs/trial-02.json"), (byTrial[2].Model, byTrial[2].SpecFile));
        Assert.Null(byTrial[3].SpecFile);
        Assert.Equal((200L, "pruned"), (byTrial[3].PrunedAtStep!.Value, byTrial[3].Status));
        Assert.Equal("CUDA out of memory", byTrial[5].Error);
        Assert.Equal(["trial-5-train"], byTrial[5].Stages);
        Assert.Equal(12, byTrial[2].Assignment["model.time.steps"]!.GetValue<int>());
        Assert.Empty(board.Warnings);

        // The whole spec of each trial with a sidecar, as the train stage recorded it.
        var spec = JsonNode.Parse(await ReadTextAsync(result, "specs/trial-02.json"))!;
        Assert.True(JsonNode.DeepEquals(SpecOf("rgc-shallow"), spec));
        Assert.Equal(["specs/trial-00.json", "specs/trial-01.json", "specs/trial-02.json", "specs/trial-04.json", "specs/trial-06.json"],
            Names(result).Where(n => n.StartsWith("specs/", StringComparison.Ordinal)).Order(StringComparer.Ordinal));

        var summary = result.Summary!;
        Assert.Equal((2, 0.72, 0.45), (summary["best_trial"]!.GetValue<int>(), summary["best_objective"]!.GetValue<double>(), summary["worst_objective"]!.GetValue<double>()));
        Assert.Equal((5, 2, 1, 1), (summary["completed"]!.GetValue<int>(), summary["pruned"]!.GetValue<int>(), summary["failed"]!.GetValue<int>(), summary["cancelled"]!.GetValue<int>()));
    }

    [Fact]
    public void A_minimised_objective_ranks_lowest_first_and_pruned_trials_at_one_rung_by_their_value()
    {
        var rows = new[]
        {
            Row(0, "cancelled"), Row(1, "failed"), Row(2, "completed", 0.9), Row(3, "completed", 0.3), Row(4, "completed", double.NaN),
            Row(5, "pruned", 0.5, prunedAt: 100), Row(6, "pruned", 0.2, prunedAt: 100), Row(7, "pruned", 0.8, prunedAt: 300),
        };

        var ranked = Leaderboard.Rank(rows, maximize: false);

        Assert.Equal([3, 2, 4, 7, 6, 5, 0, 1], ranked.Select(r => r.Trial));
        // A diverged (NaN) completed trial is listed but not ranked.
        Assert.Equal([1, 2, null, null, null, null, null, null], ranked.Select(r => r.Rank));
    }

    [Fact]
    public void The_pareto_front_keeps_the_trials_no_other_beats_with_as_few_parameters()
    {
        var rows = new[]
        {
            Row(0, "completed", 0.60, parameters: 1_000_000),
            Row(1, "completed", 0.55, parameters: 2_000_000),    // dominated by 0: less accurate with more parameters
            Row(2, "completed", 0.72, parameters: 4_000_000),
            Row(3, "completed", 0.70, parameters: 8_000_000),    // dominated by 2
            Row(4, "completed", 0.45, parameters: 500_000),
            Row(5, "pruned", 0.99, parameters: 100),             // not completed: never on the front
            Row(6, "completed", 0.99, parameters: null),         // no parameter count: cannot be placed
        };

        Assert.Equal([4, 0, 2], Leaderboard.Pareto(rows, maximize: true).Select(r => r.Trial));
        // Minimising, a lower value is better: with 0.45 at the fewest parameters, nothing else is worth its size.
        Assert.Equal([4], Leaderboard.Pareto(rows, maximize: false).Select(r => r.Trial));
        // Equal size and value: neither dominates the other; the same value with more parameters is dominated.
        var ties = new[] { Row(0, "completed", 0.5, parameters: 10), Row(1, "completed", 0.5, parameters: 10), Row(2, "completed", 0.5, parameters: 20) };
        Assert.Equal([0, 1], Leaderboard.Pareto(ties, maximize: true).Select(r => r.Trial));
    }

    [Fact]
    public async Task The_stage_writes_the_pareto_front_of_the_completed_trials()
    {
        var (result, board) = await RunAsync(await WriteSearchAsync());

        Assert.Equal([6, 0, 2], board.ParetoFront);
        Assert.Equal(3, result.Summary!["pareto_front"]!.GetValue<int>());
    }

    [Fact]
    public async Task The_csv_has_one_row_per_trial_in_leaderboard_order_and_a_column_per_searched_parameter()
    {
        var (result, _) = await RunAsync(await WriteSearchAsync());

        var records = ParseCsv(await ReadTextAsync(result, LeaderboardHandler.CsvFile));

        Assert.Equal(["rank", "trial", "status", "objective", "parameters", "wall_seconds", "pruned_at_step", "optimizer.learning_rate", "model.preset", "model.time.steps"], records[0]);
        Assert.Equal(1 + Plan.Length, records.Count);
        Assert.Equal(["2", "4", "0", "1", "6", "7", "3", "5", "8"], records.Skip(1).Select(r => r[1]));
        Assert.Equal(["1", "2", "completed", "0.72", "4000000", "62", "", "0.003", "rgc-shallow", "12"], records[1]);
        // A basenet trial has no time steps (inactive there), a pruned trial its rung and no rank, a failed one neither value nor size.
        Assert.Equal(["3", "0", "completed", "0.6", "1000000", "60", "", "0.001", "basenet", ""], records[3]);
        Assert.Equal(["", "7", "pruned", "0.35", "2500000", "67", "400", "0.02", "rgc-shallow", "6"], records[6]);
        Assert.Equal(["", "5", "failed", "", "", "65", "", "0.09", "basenet", ""], records[8]);
    }

    [Fact]
    public void A_csv_value_holding_a_comma_or_quote_is_quoted_and_reads_back_whole()
    {
        var row = Row(0, "completed", 0.5, parameters: 10) with { Assignment = new JsonObject { ["note"] = "adam, \"fused\"", ["flag"] = true } };
        var board = new Leaderboard
        {
            Search = "s",
            Strategy = "random",
            Objective = new("train", "top1", "maximize"),
            Counts = new Dictionary<string, int>(),
            Searched = ["note", "flag"],
            ParetoFront = [],
            Rows = Leaderboard.Rank([row], maximize: true),
        };

        var csv = board.ToCsv();

        Assert.Contains("\"adam, \"\"fused\"\"\"", csv, StringComparison.Ordinal);
        Assert.Equal(["1", "0", "completed", "0.5", "10", "", "", "adam, \"fused\"", "true"], ParseCsv(csv)[1]);
    }

    [Fact]
    public async Task Plots_are_written_for_the_front_and_for_every_searched_parameter()
    {
        var (result, _) = await RunAsync(await WriteSearchAsync());

        var figures = new[] { "pareto", "objective_vs_optimizer_learning_rate", "objective_vs_model_preset", "objective_vs_model_time_steps" };
        foreach (var figure in figures)
        {
            using var bitmap = SKBitmap.Decode(await ReadBytesAsync(result, figure + ".png"));
            Assert.True(bitmap is { Width: > 100, Height: > 100 }, $"{figure}.png does not decode");
            Assert.NotEmpty(Texts(await ReadTextAsync(result, figure + ".svg")));
        }
        var pareto = Texts(await ReadTextAsync(result, "pareto.svg"));
        Assert.Contains("Pareto front (3 trials)", pareto);
        Assert.Contains("completed trials (5)", pareto);
        Assert.Contains("top-1 accuracy (%)", pareto);
        Assert.Contains("1e6", pareto);                      // a log axis of parameter counts
        // The front's trials are tagged with their numbers, no other trial is.
        Assert.Equal(["#0", "#2", "#6"], pareto.Where(t => t.StartsWith('#')).Distinct().Order(StringComparer.Ordinal));
        Assert.Contains(pareto, t => t.Contains("search hpo", StringComparison.Ordinal));
        // A choice is drawn as its categories, in the space's order.
        var preset = Texts(await ReadTextAsync(result, "objective_vs_model_preset.svg"));
        Assert.Contains("basenet", preset);
        Assert.Contains("rgc-shallow", preset);
        Assert.Contains("best: trial #2", preset);
        Assert.Contains("1e-3", Texts(await ReadTextAsync(result, "objective_vs_optimizer_learning_rate.svg")));
        // Time steps are active in three of the five completed trials.
        Assert.Contains("completed trials (3)", Texts(await ReadTextAsync(result, "objective_vs_model_time_steps.svg")));
    }

    [Fact]
    public async Task A_trial_whose_artifacts_are_missing_or_corrupt_keeps_its_row_with_empty_cells_and_a_warning()
    {
        var info = await WriteSearchAsync();
        // Trial 4's metrics.json is gone from the store, trial 0's sidecar no longer matches its sha256.
        Assert.True(await _harness.Store.DeleteAsync(TrainFolder(4) + "metrics.json"));
        await File.WriteAllTextAsync(Path.Combine(_harness.Store.Root, TrainFolder(0) + "model.safetensors.json"), "{}");
        var logger = new RecordingLogger();

        var (result, board) = await RunAsync(info, logger: logger);

        var byTrial = board.Rows.ToDictionary(r => r.Trial);
        Assert.Null(byTrial[4].Parameters);
        Assert.NotNull(byTrial[4].SpecFile);
        Assert.Equal(1_000_000, byTrial[0].Parameters);
        Assert.Null(byTrial[0].SpecFile);
        // Still ranked by its objective; only the cells that needed the artifact are empty.
        Assert.Equal([2, 4, 0, 1, 6], board.Rows.Where(r => r.Rank is not null).Select(r => r.Trial));
        Assert.DoesNotContain("specs/trial-00.json", Names(result));
        Assert.Equal(2, board.Warnings.Count);
        Assert.Contains(board.Warnings, w => w.StartsWith("trial 4", StringComparison.Ordinal) && w.Contains(TrainFolder(4) + "metrics.json", StringComparison.Ordinal));
        Assert.Contains(board.Warnings, w => w.StartsWith("trial 0", StringComparison.Ordinal) && w.Contains("model.safetensors.json", StringComparison.Ordinal));
        Assert.Equal(2, logger.Warnings.Count);
        // Without a parameter count trial 4 cannot be placed; it was dominated anyway, so the front is unchanged.
        Assert.Equal([6, 0, 2], board.ParetoFront);
        var csv = ParseCsv(await ReadTextAsync(result, LeaderboardHandler.CsvFile));
        Assert.Equal(["2", "4", "completed", "0.7", "", "64", "", "0.0005", "rgc-shallow", "10"], csv[2]);
    }

    [Fact]
    public async Task A_corrupt_trials_json_fails_the_stage_naming_it_and_keeping_the_corruption_as_cause()
    {
        var info = await WriteSearchAsync();
        var file = Path.Combine(_harness.Store.Root, info.Path);
        var bytes = await File.ReadAllBytesAsync(file);
        bytes[bytes.Length / 2] ^= 0x20;
        await File.WriteAllBytesAsync(file, bytes);

        var e = await Assert.ThrowsAsync<StageInputException>(() => RunAsync(info));

        Assert.Contains(info.Path, e.Message, StringComparison.Ordinal);
        Assert.IsType<ArtifactCorruptedException>(e.InnerException);
    }

    [Fact]
    public async Task A_trials_json_that_is_not_a_search_record_fails_the_stage_naming_it()
    {
        var info = await _harness.Store.PutAsync("runs/1/search-00000001/trials.json", new MemoryStream("""{ "search": "hpo" }"""u8.ToArray()), "application/json");

        var e = await Assert.ThrowsAsync<StageInputException>(() => RunAsync(info));

        Assert.Contains(info.Path, e.Message, StringComparison.Ordinal);
        Assert.IsAssignableFrom<JsonException>(e.InnerException);
    }

    [Fact]
    public async Task The_search_is_the_named_dependency_or_the_only_one_that_wrote_trials()
    {
        var info = await WriteSearchAsync();
        var other = await _harness.Store.PutAsync("runs/1/search-00000002/trials.json", new MemoryStream(await ReadAsync(info.Path)), "application/json");
        var two = new Dictionary<string, IReadOnlyList<ArtifactInfo>> { ["hpo"] = [info], ["hpo2"] = [other] };

        var several = await Assert.ThrowsAsync<StageInputException>(() => RunAsync(two, """{}"""));
        Assert.Contains("params.search", several.Message, StringComparison.Ordinal);
        Assert.Contains("hpo2", several.Message, StringComparison.Ordinal);
        var unknown = await Assert.ThrowsAsync<StageInputException>(() => RunAsync(two, """{ "search": "grid" }"""));
        Assert.Contains("params.search: 'grid' is not a dependency", unknown.Message, StringComparison.Ordinal);
        var none = await Assert.ThrowsAsync<StageInputException>(() => RunAsync(new Dictionary<string, IReadOnlyList<ArtifactInfo>> { ["train"] = [] }, """{}"""));
        Assert.Contains("trials.json", none.Message, StringComparison.Ordinal);
        var (_, named) = await RunAsync(two, """{ "search": "hpo2" }""");
        Assert.Equal(Plan.Length, named.Rows.Count);
    }

    [Theory]
    [InlineData("""{ "search": " " }""", "search")]
    [InlineData("""{ "top": 0 }""", "top")]
    [InlineData("""{ "top": 1001 }""", "top")]
    public void Invalid_params_name_the_field(string json, string field)
    {
        var errors = JsonSerializer.Deserialize<LeaderboardParams>(json, PipelineJson.Options)!.Validate().ToList();
        Assert.Equal(field, Assert.Single(errors).Field);
    }

    [Fact]
    public async Task Invalid_params_stop_the_stage_before_it_reads_anything()
    {
        var e = await Assert.ThrowsAsync<StageInputException>(() => RunAsync(new Dictionary<string, IReadOnlyList<ArtifactInfo>>(), """{ "top": 0 }"""));
        Assert.Contains("params.top", e.Message, StringComparison.Ordinal);
    }

    private static LeaderboardRow Row(int trial, string status, double? objective = null, long? parameters = null, long? prunedAt = null) => new()
    {
        Trial = trial,
        Status = status,
        Objective = objective,
        Parameters = parameters,
        PrunedAtStep = prunedAt,
        Assignment = [],
        Stages = [],
    };

    private static string TrainFolder(int trial) => $"runs/1/train-t{trial:D2}/";

    private static JsonNode SpecOf(string preset) => JsonSerializer.SerializeToNode(ModelPresets.Load(preset), PipelineJson.Options)!;

    /// <summary>Writes every trial's train stage artifacts, then trials.json; returns trials.json.</summary>
    private async Task<ArtifactInfo> WriteSearchAsync()
    {
        var trials = new List<SearchTrialRecord>();
        foreach (var t in Plan)
        {
            var assignment = new JsonObject { ["optimizer.learning_rate"] = t.Lr, ["model.preset"] = t.Preset };
            if (t.Steps is { } steps) assignment["model.time.steps"] = steps;
            var artifacts = new List<ArtifactRef>();
            JsonObject? summary = null;
            if (t.Status == "completed")
            {
                var metrics = new JsonObject { ["model"] = t.Preset, ["parameters"] = t.Parameters, ["top1"] = t.Top1, ["steps"] = 1000 };
                artifacts.Add(Ref(await _harness.Store.PutAsync(TrainFolder(t.Trial) + "metrics.json", new MemoryStream(Encoding.UTF8.GetBytes(metrics.ToJsonString())), "application/json")));
                using var module = nn.Linear(2, 2);
                await ModelCheckpoint.SaveAsync(_harness.Store, TrainFolder(t.Trial) + "model.safetensors", module, SpecOf(t.Preset));
                foreach (var file in new[] { "model.safetensors", "model.safetensors.json" })
                    artifacts.Add(Ref((await _harness.Store.GetInfoAsync(TrainFolder(t.Trial) + file))!));
                summary = new JsonObject { ["model"] = t.Preset, ["parameters"] = t.Parameters, ["top1"] = t.Top1 };
            }
            else if (t.Status == "pruned")
            {
                summary = new JsonObject { ["model"] = t.Preset, ["parameters"] = t.Parameters, ["top1"] = t.Top1, ["pruned_at_step"] = t.PrunedAt };
            }
            trials.Add(new SearchTrialRecord
            {
                Number = t.Trial,
                Status = t.Status,
                Assignment = assignment,
                Objective = t.Top1,
                PrunedAtStep = t.PrunedAt,
                Order = t.Trial,
                Error = t.Status == "failed" ? "CUDA out of memory" : null,
                WallSeconds = t.Status == "cancelled" ? null : 60 + t.Trial,
                Stages =
                [
                    new SearchTrialStage
                    {
                        Name = $"trial-{t.Trial}-train",
                        Role = "train",
                        Kind = "train",
                        Status = t.Status switch { "completed" => "succeeded", var s => s },
                        Params = new JsonObject { ["model"] = new JsonObject { ["preset"] = t.Preset } },
                        Summary = summary,
                        Artifacts = artifacts,
                    },
                ],
            });
        }
        var search = new SearchTrials
        {
            Search = "hpo",
            Strategy = "tpe",
            Seed = 1,
            Budget = Plan.Length,
            Parallel = 1,
            Objective = new SearchObjective(),
            Space = (JsonObject)Space.DeepClone(),
            Trials = trials,
        };
        return await _harness.Store.PutAsync("runs/1/search-00000001/trials.json", new MemoryStream(JsonSerializer.SerializeToUtf8Bytes(search, PipelineJson.Options)), "application/json");

        static ArtifactRef Ref(ArtifactInfo a) => new(a.Path, a.Sha256, a.Bytes);
    }

    private Task<(StageResult Result, Leaderboard Board)> RunAsync(ArtifactInfo trials, string json = "{}", ILogger? logger = null) =>
        RunAsync(new Dictionary<string, IReadOnlyList<ArtifactInfo>> { ["hpo"] = [trials] }, json, logger);

    private async Task<(StageResult Result, Leaderboard Board)> RunAsync(Dictionary<string, IReadOnlyList<ArtifactInfo>> inputs, string json, ILogger? logger = null)
    {
        var context = _harness.NewContext(inputs: inputs, stageName: "leaderboard", logger: logger);
        var p = JsonSerializer.Deserialize<LeaderboardParams>(json, PipelineJson.Options)!;
        var result = await StageTestHarness.RunAsync(new LeaderboardHandler(), new LeaderboardStage(p, context));
        var board = JsonSerializer.Deserialize<Leaderboard>(await ReadTextAsync(result, LeaderboardHandler.JsonFile), PipelineJson.Options)!;
        return (result, board);
    }

    private static List<string> Names(StageResult result) => [.. result.Artifacts.Select(a => a.Path[(a.Path.IndexOf("/leaderboard-", StringComparison.Ordinal) + 1)..]).Select(p => p[(p.IndexOf('/') + 1)..])];

    private async Task<byte[]> ReadAsync(string path)
    {
        await using var s = await _harness.Store.OpenReadAsync(path);
        using var buffer = new MemoryStream();
        await s.CopyToAsync(buffer);
        return buffer.ToArray();
    }

    private Task<byte[]> ReadBytesAsync(StageResult result, string name) =>
        ReadAsync(result.Artifacts.Single(a => a.Path.EndsWith("/" + name, StringComparison.Ordinal)).Path);

    private async Task<string> ReadTextAsync(StageResult result, string name) => Encoding.UTF8.GetString(await ReadBytesAsync(result, name));

    private static List<string> Texts(string svg) =>
        [.. XDocument.Parse(svg).Root!.Descendants().Where(e => e.Name.LocalName == "text").Select(e => e.Value.Trim())];

    private static List<string[]> ParseCsv(string text)
    {
        using var reader = new CsvReader(new StringReader(text), CultureInfo.InvariantCulture);
        var records = new List<string[]>();
        while (reader.Read()) records.Add(reader.Parser.Record!);
        return records;
    }

    private sealed class RecordingLogger : ILogger
    {
        public List<string> Warnings { get; } = [];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (logLevel == LogLevel.Warning) lock (Warnings) Warnings.Add(formatter(state, exception));
        }
    }
}
