using Pipeline.Jobs.RunSpecs;
using Pipeline.Jobs.Search;

namespace Pipeline.Jobs.Tests.Search;

/// <summary>A search in a RunSpec is validated when the RunSpec is loaded, every error under its field.</summary>
public class SearchSpecTests
{
    private static string Spec(string search, string extraStages = "") => $$"""
        {
          "name": "search-spec",
          "stages": {
            "shards": { "kind": "shard", "params": { "source": { "kind": "synthetic", "num_classes": 4, "image_size": 32, "train_count": 64, "val_count": 16 } } },
            "search": { "kind": "search", "depends_on": ["shards"], "params": {{search}} }{{extraStages}}
          }
        }
        """;

    private static string TrainSearch(string space, string extra = "") => $$"""
        { "trial": { "kind": "train", "params": { "model": { "preset": "rgc-shallow", "width": 0.25 }, "epochs": 1 } },
          "space": {{space}}, "strategy": "tpe", "budget": 6, "parallel": 2 {{extra}} }
        """;

    private static List<string> Errors(string json)
    {
        var e = Assert.Throws<RunSpecException>(() => RunSpecLoader.Load(json));
        return [.. e.Errors.Select(x => x.ToString())];
    }

    [Fact]
    public void A_valid_search_plans_as_one_stage_with_its_defaults_filled_in()
    {
        var (_, plan, _) = RunSpecLoader.Load(Spec(TrainSearch("""
            { "optimizer.learning_rate": { "kind": "log_uniform", "low": 0.0001, "high": 0.01 },
              "model.preset": { "kind": "choice", "values": ["rgc-shallow", "lstm-shallow"] },
              "model.width": { "kind": "choice", "values": [0.25, 0.5], "when": { "path": "model.preset", "in": ["rgc-shallow"] } } }
            """)));

        var search = (SearchParams)plan.Single(p => p.Name == "search").Params;
        Assert.Equal((SearchStrategy.Tpe, 6, 2, 0), (search.Strategy, search.Budget, search.Parallel, search.AllowFailures));
        Assert.Equal(["optimizer.learning_rate", "model.preset", "model.width"], search.Space.Keys);
        Assert.Equal("top1", search.Objective.Metric);
    }

    [Fact]
    public void An_unknown_path_an_empty_choice_and_a_bound_the_field_rejects_are_each_named()
    {
        var errors = Errors(Spec(TrainSearch("""
            { "optimizer.learnin_rate": { "kind": "log_uniform", "low": 0.0001, "high": 0.01 },
              "model.preset": { "kind": "choice", "values": [] },
              "optimizer.momentum": { "kind": "uniform", "low": 0.5, "high": 1.5 } }
            """)));

        Assert.Contains(errors, e => e.StartsWith("stages.search.params.space[\"optimizer.learnin_rate\"].low: ", StringComparison.Ordinal) && e.Contains("optimizer.learnin_rate: unknown field", StringComparison.Ordinal));
        Assert.Contains("stages.search.params.space[\"model.preset\"].values: a choice needs at least one value", errors);
        Assert.Contains(errors, e => e.StartsWith("stages.search.params.space[\"optimizer.momentum\"].high: 1.5 makes the train params invalid: optimizer.momentum: must be in [0, 1)", StringComparison.Ordinal));
        Assert.DoesNotContain(errors, e => e.Contains("optimizer.momentum\"].low", StringComparison.Ordinal));
    }

    [Fact]
    public void The_trial_the_objective_the_budget_and_the_trial_names_are_checked()
    {
        var badTrial = Errors(Spec("""{ "trial": { "kind": "shard" }, "space": { "seed": { "kind": "int", "low": 0, "high": 3 } } }"""));
        var badObjective = Errors(Spec("""
            { "trial": { "kind": "train" }, "space": { "seed": { "kind": "int", "low": 0, "high": 3 } },
              "objective": { "of": "sweep", "direction": "up" }, "budget": 6, "parallel": 9 }
            """));
        var badIndex = Errors(Spec(TrainSearch("""{ "model.spec.layers[2].cell.type": { "kind": "choice", "values": ["lstm"] } }""")));
        var clash = Errors(Spec(TrainSearch("""{ "seed": { "kind": "int", "low": 0, "high": 3 } }"""), """, "search-t01": { "kind": "probe" }"""));

        Assert.Contains(badTrial, e => e.StartsWith("stages.search.params.trial.kind: 'shard' cannot be a trial", StringComparison.Ordinal));
        Assert.Contains("stages.search.params.objective.of: is 'sweep' but the trial has no sweep; add trial.sweep or use 'train'.", badObjective);
        Assert.Contains("stages.search.params.objective.direction: must be 'maximize' or 'minimize'; got 'up'.", badObjective);
        Assert.Contains("stages.search.params.parallel: must be between 1 and the budget (6); got 9.", badObjective);
        Assert.Contains(badIndex, e => e.StartsWith("stages.search.params.space[\"model.spec.layers[2].cell.type\"].values[0]: 'model.spec.layers[2]' is not an element", StringComparison.Ordinal));
        Assert.Contains("stages.search-t01: names like 'search-t00' are the trials of search 'search'; rename this stage", clash);
    }

    [Theory]
    [InlineData("optimizer.learning_rate", "{ \"optimizer\": { \"learning_rate\": 0.5 } }")]
    [InlineData("model.spec.layers[1].cell.type", "{ \"model\": { \"spec\": { \"layers\": [{}, { \"cell\": { \"type\": \"lstm\" } }] } } }")]
    [InlineData("augmentation.flip", "{ \"augmentation\": { \"flip\": true } }")]
    public void A_value_is_set_at_its_dotted_path_creating_missing_objects(string path, string expected)
    {
        var template = path.Contains('[', StringComparison.Ordinal)
            ? System.Text.Json.Nodes.JsonNode.Parse("{ \"model\": { \"spec\": { \"layers\": [{}, { \"cell\": { \"type\": \"rgc\" } }] } } }")!.AsObject()
            : null;
        var value = path.EndsWith("flip", StringComparison.Ordinal) ? System.Text.Json.Nodes.JsonValue.Create(true) : path.EndsWith("type", StringComparison.Ordinal)
            ? System.Text.Json.Nodes.JsonValue.Create("lstm") : System.Text.Json.Nodes.JsonValue.Create(0.5);

        var result = SearchParams.Apply(template, path, value, out var error);

        Assert.Null(error);
        Assert.True(System.Text.Json.Nodes.JsonNode.DeepEquals(System.Text.Json.Nodes.JsonNode.Parse(expected), result), result.ToJsonString());
    }
}
