using System.Text.Json.Nodes;
using Pipeline.Jobs.Runs;

namespace Pipeline.Jobs.Tests.Runs;

/// <summary>The headline figures `run --wait` and `runs list` print, from summaries shaped as the stages write them.</summary>
public class HeadlinesTests
{
    private static JsonObject Json(string text) => JsonNode.Parse(text)!.AsObject();

    private static string[] Texts(string kind, JsonObject facts) => [.. Headlines.Of(kind, facts).Select(h => h.Text)];

    // TrainStage's summary; metrics.json adds the class count (and the unrounded numbers).
    private const string TrainSummary = """{ "model": "basenet", "parameters": 123456, "top1": 0.8812, "top5": 1.0, "steps": 256, "wall_seconds": 61.2 }""";

    [Fact]
    public void Train_shows_top1_and_parameters_and_top5_only_with_more_than_five_classes()
    {
        Assert.Equal(["top-1 88.1 %", "123.5 k parameters"], Texts("train", Headlines.Facts(Json(TrainSummary), Json("""{ "classes": 4 }"""))));
        Assert.Equal(["top-1 88.1 %", "top-5 100.0 %", "123.5 k parameters"], Texts("train", Headlines.Facts(Json(TrainSummary), Json("""{ "classes": 10 }"""))));
        // Without metrics.json the class count is unknown: no top-5 that may be trivially 100 %.
        Assert.Equal(["top-1 88.1 %", "123.5 k parameters"], Texts("train", Headlines.Facts(Json(TrainSummary))));
    }

    [Fact]
    public void Metrics_json_values_come_before_the_summarys_rounded_ones()
    {
        var facts = Headlines.Facts(Json("""{ "top1": 0.8812, "steps": 256 }"""), Json("""{ "top1": 0.88119, "classes": 4 }"""));
        Assert.Equal(0.88119, (double)facts["top1"]!);
        Assert.Equal(256, (int)facts["steps"]!);
        Assert.Equal(4, (int)facts["classes"]!);
    }

    [Fact]
    public void Timestep_sweep_shows_its_peak_and_prints_whatever_keys_it_has()
    {
        Assert.Equal(["peak top-1 74.2 % at step 11", "trained with 16 steps"],
            Texts("timestep-sweep", Json("""{ "peak_top1": 0.742, "peak_step": 11, "training_steps": 16, "readout_rules": { "last": 0.7 }, "new_key": [1, 2] }""")));
        Assert.Equal(["peak top-1 50.0 %"], Texts("timestep-sweep", Json("""{ "peak_top1": 0.5 }""")));
        Assert.Equal(["peak at step 3"], Texts("timestep-sweep", Json("""{ "peak_step": 3, "peak_top1": null }""")));
        // None of its keys usable: the summary's plain values, whatever they are.
        Assert.Equal(["peak_top1 NaN", "note early stop"],
            Texts("timestep-sweep", Json("""{ "peak_top1": "NaN", "peak_step": [1, 2], "training_steps": null, "note": "early stop" }""")));
    }

    [Fact]
    public void No_stage_kind_throws_on_missing_or_mistyped_keys()
    {
        string[] odd =
        [
            "{}",
            """{ "top1": "high", "classes": "many", "top5": {}, "parameters": [1] }""",
            """{ "areas": [ "V4", "IT" ], "peak_top1": true, "stimuli": "200", "train": -1e308 }""",
            """{ "areas": { "V4": null, "IT": { "best_layer": 5, "layer": null, "noise_corrected": "NaN", "matches_generating_layer": "no" } } }""",
            """{ "areas": { "V4": { "best_layer": "conv3" } }, "peak_step": 1.5, "skipped": 2 }""",
        ];
        foreach (var kind in new[] { "train", "timestep-sweep", "neural-fit", "virtual-monkey", "shard", "probe", "report" })
        {
            foreach (var doc in odd)
            {
                var figures = Headlines.Of(kind, Json(doc));
                Assert.All(figures, f => Assert.False(string.IsNullOrWhiteSpace(f.Text)));
            }
            Assert.Empty(Headlines.Of(kind, null));
        }
        Assert.Equal(["V4 ← conv3"], Texts("neural-fit", Json(odd[^1])));
    }

    [Fact]
    public void Neural_fit_names_each_areas_best_layer_with_its_ceiled_score_and_a_layer_that_misses_the_known_answer()
    {
        var summary = Json("""
            { "model": "rgc-shallow", "wall_seconds": 20.1, "areas": {
                "V4": { "best_layer": "conv3", "noise_corrected": 0.931, "generating_layer": "conv3", "matches_generating_layer": true },
                "IT": { "best_layer": "conv4", "noise_corrected": 0.8, "generating_layer": "conv5", "matches_generating_layer": false } } }
            """);
        Assert.Equal(["V4 ← conv3 (ceiled r 0.93)", "IT ← conv4 (ceiled r 0.80; generated from conv5)"], Texts("neural-fit", summary));
    }

    [Fact]
    public void Shard_and_virtual_monkey_show_their_counts()
    {
        Assert.Equal(["4 classes", "2,048 train", "256 val images", "3 shards"],
            Texts("shard", Json("""{ "classes": 4, "train": 2048, "val": 256, "shards": 3, "skipped": 0 }""")));
        Assert.Equal(["4 classes", "2,048 train", "256 val images", "3 shards", "5 skipped"],
            Texts("shard", Json("""{ "classes": 4, "train": 2048, "val": 256, "shards": 3, "skipped": 5 }""")));
        Assert.Equal(["200 stimuli", "32 sites", "V4 ← conv3", "IT ← conv5"], Texts("virtual-monkey", Json("""
            { "reference": "trained rgc-shallow", "stimuli": 200, "sites": 32, "areas": {
                "V4": { "layer": "conv3", "latency_steps": 0, "expected_ceiling": 0.9 }, "IT": { "layer": "conv5", "latency_steps": 0, "expected_ceiling": 0.9 } } }
            """)));
    }

    [Fact]
    public void A_stage_kind_without_a_rule_shows_its_plain_summary_values_as_percentages_where_they_are_accuracies()
    {
        Assert.Equal(["best_top1 91.0 %", "trials 12", "leader rgc-3", "converged yes"],
            Texts("leaderboard", Json("""{ "best_top1": 0.91, "trials": 12, "leader": "rgc-3", "converged": true, "table": [1, 2], "by_trial": { "a": 1 } }""")));
    }

    [Fact]
    public void A_runs_headline_is_its_best_train_top1_and_names_the_stage_else_its_sweep_peak_else_its_last_figure()
    {
        var train = Headlines.OfRun(
        [
            ("shards", "shard", Json("""{ "classes": 4, "train": 2048 }""")),
            ("rgc", "train", Json("""{ "top1": 0.72 }""")),
            ("basenet", "train", Json("""{ "top1": 0.88 }""")),
            ("sweep", "timestep-sweep", Json("""{ "peak_top1": 0.95 }""")),
            ("failed", "train", null),
        ]);
        Assert.Equal(new RunHeadline("basenet", "top1", "top-1 88.0 %", 0.88), train);

        var sweep = Headlines.OfRun([("shards", "shard", Json("""{ "classes": 4 }""")), ("sweep", "timestep-sweep", Json("""{ "peak_top1": 0.6, "peak_step": 4 }"""))]);
        Assert.Equal(("sweep", "peak top-1 60.0 % at step 4"), (sweep!.Stage, sweep.Text));

        var shardsOnly = Headlines.OfRun([("shards", "shard", Json("""{ "classes": 4, "train": 2048 }"""))]);
        Assert.Equal(("shards", "4 classes"), (shardsOnly!.Stage, shardsOnly.Text));

        Assert.Null(Headlines.OfRun([("pending", "train", null)]));
    }
}
