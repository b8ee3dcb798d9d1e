using System.Text.Json;
using Pipeline.Jobs.Search;
using Pipeline.Stages;

namespace Pipeline.Jobs.Tests.Search;

public sealed class SearchSpaceTests
{
    internal static SearchSpace Parse(string json) => JsonSerializer.Deserialize<SearchSpace>(json, PipelineJson.Options)!;

    internal const string ConvRnnSpace = """
        {
          "optimizer.learning_rate": { "kind": "log_uniform", "low": 1e-4, "high": 0.1 },
          "model.width": { "kind": "uniform", "low": 0.5, "high": 2, "grid": 3 },
          "model.spec.layers[2].cell.type": { "kind": "choice", "values": ["rgc", "time_decay", "none"] },
          "model.spec.layers[2].cell.gate_bias": { "kind": "uniform", "low": -1, "high": 1, "grid": 2,
                                                   "when": { "path": "model.spec.layers[2].cell.type", "in": ["rgc"] } },
          "train.batch_size": { "kind": "int", "low": 32, "high": 256, "step": 32 }
        }
        """;

    [Fact]
    public void A_valid_space_reads_in_its_written_order_and_round_trips()
    {
        var space = Parse(ConvRnnSpace);

        Assert.Empty(space.Validate());
        Assert.Equal(["optimizer.learning_rate", "model.width", "model.spec.layers[2].cell.type", "model.spec.layers[2].cell.gate_bias", "train.batch_size"], space.Keys);
        Assert.Equal(ParameterKind.LogUniform, space["optimizer.learning_rate"].Kind);
        var again = Parse(JsonSerializer.Serialize(space, PipelineJson.Options));
        Assert.Equal(space.Keys, again.Keys);
        Assert.Equal("rgc", again["model.spec.layers[2].cell.gate_bias"].When!.In[0].GetValue<string>());
    }

    [Fact]
    public void A_condition_comes_before_the_parameters_it_switches_on_in_decision_order()
    {
        var space = Parse("""
            { "tau": { "kind": "uniform", "low": 0, "high": 1, "when": { "path": "cell", "in": ["rgc"] } },
              "cell": { "kind": "choice", "values": ["rgc", "none"] } }
            """);

        Assert.Equal(["cell", "tau"], space.DecisionOrder());
    }

    public static TheoryData<string, string, string> BadSpaces => new()
    {
        { """{}""", "space", "has no parameters" },
        { """{ "model.width": { "kind": "uniform", "low": 2, "high": 1 } }""", "space[\"model.width\"].low", "must be below high (got 2 ≥ 1)" },
        { """{ "a": { "kind": "uniform", "low": 0 } }""", "space[\"a\"].high", "needs a finite high" },
        { """{ "a": { "kind": "choice", "values": [] } }""", "space[\"a\"].values", "at least one value" },
        { """{ "a": { "kind": "choice", "values": [{ "x": 1 }] } }""", "space[\"a\"].values[0]", "must be a string, number or bool" },
        { """{ "a": { "kind": "choice", "values": [1, 1.0] } }""", "space[\"a\"].values[1]", "listed twice" },
        { """{ "a": { "kind": "choice", "values": [1], "grid": 3 } }""", "space[\"a\"].grid", "grid is for numeric ranges" },
        { """{ "a": { "kind": "uniform", "low": 0, "high": 1, "values": [1] } }""", "space[\"a\"].values", "only a choice has values" },
        { """{ "lr": { "kind": "log_uniform", "low": 0, "high": 1 } }""", "space[\"lr\"].low", "must be above 0" },
        { """{ "n": { "kind": "int", "low": 0.5, "high": 4 } }""", "space[\"n\"].low", "whole-number bounds" },
        { """{ "n": { "kind": "int", "low": 0, "high": 10, "step": 3 } }""", "space[\"n\"].step", "must divide high − low" },
        { """{ "n": { "kind": "int", "low": 0, "high": 10, "step": 0 } }""", "space[\"n\"].step", "at least 1" },
        { """{ "x": { "kind": "uniform", "low": 0, "high": 1, "step": 1 } }""", "space[\"x\"].step", "only an int parameter has a step" },
        { """{ "x": { "kind": "uniform", "low": 0, "high": 1, "grid": 1 } }""", "space[\"x\"].grid", "at least 2 values" },
        { """{ "b": { "kind": "uniform", "low": 0, "high": 1, "when": { "path": "nope", "in": [1] } } }""", "space[\"b\"].when.path", "'nope' is not a parameter of the space" },
        { """{ "a": { "kind": "uniform", "low": 0, "high": 1 }, "b": { "kind": "uniform", "low": 0, "high": 1, "when": { "path": "a", "in": [0] } } }""", "space[\"b\"].when.path", "'a' is a uniform parameter; a condition must point at a choice" },
        { """{ "a": { "kind": "choice", "values": [1], "when": { "path": "a", "in": [1] } } }""", "space[\"a\"].when.path", "cannot depend on itself" },
        { """{ "a": { "kind": "choice", "values": [1], "when": { "path": "b", "in": [1] } }, "b": { "kind": "choice", "values": [1], "when": { "path": "a", "in": [1] } } }""", "space[\"a\"].when", "cycle: a → b → a" },
        { """{ "a": { "kind": "choice", "values": ["rgc"] }, "b": { "kind": "uniform", "low": 0, "high": 1, "when": { "path": "a", "in": ["lstm"] } } }""", "space[\"b\"].when.in[0]", "\"lstm\" is not a value of 'a'" },
        { """{ "a": { "kind": "choice", "values": ["rgc"] }, "b": { "kind": "uniform", "low": 0, "high": 1, "when": { "path": "a", "in": [] } } }""", "space[\"b\"].when.in", "at least one value" },
    };

    [Theory]
    [MemberData(nameof(BadSpaces))]
    public void Every_validation_error_names_its_field(string json, string field, string message)
    {
        var errors = Parse(json).Validate().ToList();

        Assert.Contains(errors, e => e.Field == field && e.Message.Contains(message, StringComparison.Ordinal));
        Assert.All(errors, e => Assert.StartsWith("space", e.Field, StringComparison.Ordinal));
    }

    [Fact]
    public void A_sampler_refuses_an_invalid_space_with_its_errors()
    {
        var e = Assert.Throws<ArgumentException>(() => new RandomSampler(Parse("""{ "model.width": { "kind": "uniform", "low": 2, "high": 1 } }"""), seed: 1));

        Assert.Contains("space[\"model.width\"].low: must be below high (got 2 ≥ 1)", e.Message, StringComparison.Ordinal);
    }
}
