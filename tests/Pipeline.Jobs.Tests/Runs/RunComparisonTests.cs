using System.Text.Json.Nodes;
using Pipeline.Jobs.Cli;
using Pipeline.Jobs.RunStore;
using Pipeline.Jobs.Runs;

namespace Pipeline.Jobs.Tests.Runs;

/// <summary>`runs compare`: what differs between runs, stage by stage, as flattened JSON paths.</summary>
public class RunComparisonTests
{
    private static StageDetail Stage(string name, string kind, string parameters, string? summary = null, params string[] dependsOn) =>
        new(1, name, kind, "cpu", StageStatus.Succeeded, 1, 1, null, null, null, null, null, null, null, null, dependsOn,
            summary is null ? null : JsonNode.Parse(summary), [], [], JsonNode.Parse(parameters));

    private static RunDetail Run(long id, string[] overrides, params StageDetail[] stages) =>
        new(id, "smoke", "smoke", RunStatus.Succeeded, DateTime.UtcNow, DateTime.UtcNow, false, stages, overrides);

    private static IReadOnlyList<KeyValuePair<string, string>> Flatten(RunDetail run) =>
        RunComparison.Flatten(run, run.Stages.ToDictionary(s => s.Name, s => Headlines.Facts(s.Summary)));

    private static readonly RunDetail Narrow = Run(1, [],
        Stage("shards", "shard", """{ "source": { "kind": "synthetic", "num_classes": 4 }, "seed": 0 }""", """{ "classes": 4, "train": 2048 }"""),
        Stage("rgc", "train", """{ "model": { "preset": "rgc-shallow", "width": 0.25, "time": { "steps": 8 } }, "epochs": 2 }""",
            """{ "top1": 0.72, "parameters": 9000 }""", "shards"),
        Stage("monkey", "virtual-monkey", """{ "areas": [ { "region": "V4", "layer": "conv3" }, { "region": "IT", "layer": "conv5" } ], "classes": [1, 2] }""",
            null, "rgc"));

    private static readonly RunDetail Wide = Run(2, ["stages.rgc.params.model.width=0.5"],
        Stage("shards", "shard", """{ "source": { "kind": "synthetic", "num_classes": 4 }, "seed": 0 }""", """{ "classes": 4, "train": 2048 }"""),
        Stage("rgc", "train", """{ "model": { "preset": "rgc-shallow", "width": 0.5, "time": { "steps": 8 } }, "epochs": 2 }""",
            """{ "top1": 0.81, "parameters": 36000 }""", "shards"),
        Stage("monkey", "virtual-monkey", """{ "areas": [ { "region": "V4", "layer": "conv3" }, { "region": "IT", "layer": "conv4" } ], "classes": [1, 2] }""",
            null, "rgc"));

    [Fact]
    public void Compare_lists_only_the_differing_params_and_metrics_as_flattened_paths_stage_by_stage()
    {
        var keys = RunComparison.Compare([Flatten(Narrow), Flatten(Wide)], all: false);
        Assert.Equal(
        [
            ("overrides", "(none)", "stages.rgc.params.model.width=0.5"),
            ("rgc.params.model.width", "0.25", "0.5"),
            ("rgc.metrics.top1", "0.72", "0.81"),
            ("rgc.metrics.parameters", "9000", "36000"),
            ("monkey.params.areas[1].layer", "conv5", "conv4"),
        ], keys.Select(k => (k.Key, k.Values[0], k.Values[1])));
    }

    [Fact]
    public void Compare_with_all_lists_every_key_including_the_equal_ones()
    {
        var keys = RunComparison.Compare([Flatten(Narrow), Flatten(Wide)], all: true);
        var equal = keys.Where(k => !k.Differs).Select(k => k.Key).ToList();
        Assert.Contains("shards.params.source.num_classes", equal);
        Assert.Contains("rgc.params.model.time.steps", equal);
        Assert.Contains("monkey.params.classes", equal);
        Assert.Contains("monkey.params.areas[0].layer", equal);
        Assert.Contains("rgc.depends_on", equal);
        Assert.Equal(5, keys.Count(k => k.Differs));
    }

    [Fact]
    public void A_stage_or_param_only_one_run_has_shows_as_missing_in_the_others_and_stays_with_its_stage()
    {
        var withSweep = Run(3, [],
            Stage("shards", "shard", """{ "source": { "kind": "synthetic", "num_classes": 4 }, "seed": 0, "new_param": 1 }""", """{ "classes": 4, "train": 2048 }"""),
            Narrow.Stages[1], Narrow.Stages[2],
            Stage("sweep", "timestep-sweep", """{ "max_steps": 16 }""", """{ "peak_top1": 0.74 }""", "rgc"));
        var keys = RunComparison.Compare([Flatten(Narrow), Flatten(withSweep)], all: false);
        Assert.Equal(
        [
            ("shards.params.new_param", null, "1"),
            ("sweep.kind", null, "timestep-sweep"),
            ("sweep.depends_on", null, "[rgc]"),
            ("sweep.params.max_steps", null, "16"),
            ("sweep.metrics.peak_top1", null, "0.74"),
        ], keys.Select(k => (k.Key, k.Values[0], k.Values[1])));

        using var text = new StringWriter();
        CliOutput.PrintComparison([Narrow, withSweep], keys, all: false, text);
        var lines = text.ToString().Split('\n');
        Assert.Matches(@"^shards\.params\.new_param\s+—\s+1$", lines.Single(l => l.StartsWith("shards.params.new_param", StringComparison.Ordinal)));
        Assert.Matches(@"^key\s+run 1 'smoke'\s+run 3 'smoke'$", lines[0]);
    }
}
