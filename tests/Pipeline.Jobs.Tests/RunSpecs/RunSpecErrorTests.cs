using Pipeline.Jobs.RunSpecs;
using Pipeline.Stages.Diagnostics;
using Pipeline.Stages.Execution;

namespace Pipeline.Jobs.Tests.RunSpecs;

/// <summary>
/// The mistakes that used to crash the loader or answer in CLR type names, each with the exact error a user now reads:
/// the field, what JSON it needs, and what it got.
/// </summary>
public class RunSpecErrorTests
{
    /// <summary>A RunSpec of probe stages <c>a</c> and <c>b</c> (b after a) with <paramref name="b"/> as stage b's body.</summary>
    private static string TwoProbes(string b) => $$"""{ "name": "x", "stages": { "a": { "kind": "probe" }, "b": {{b}} } }""";

    private static string OneStage(string kind, string parameters) => $$"""{ "name": "x", "stages": { "s": { "kind": "{{kind}}", "params": {{parameters}} } } }""";

    public static TheoryData<string, string, string[], string, string> Mistakes() => new()
    {
        // what, RunSpec, --set overrides, field, message
        { "a dependency listed twice", TwoProbes("""{ "kind": "probe", "depends_on": ["a", "a"] }"""), [],
            "stages.b.depends_on[1]", "'a' is listed twice; list each dependency once" },
        { "a stage that is null", """{ "name": "x", "stages": { "a": null } }""", [],
            "stages.a", "must be an object; got null" },
        { "a stage that is not an object", """{ "name": "x", "stages": { "a": 5 } }""", [],
            "stages.a", "must be an object; got the number 5" },
        { "stages as an array", """{ "name": "x", "stages": [] }""", [],
            "stages", "must be an object; got an empty array" },
        { "no stages at all", """{ "name": "x" }""", [],
            "stages", "is required; give an object" },
        { "a stage without a kind", TwoProbes("""{ "depends_on": ["a"] }"""), [],
            "stages.b.kind", "is required; give a string" },
        { "a null kind", TwoProbes("""{ "kind": null }"""), [],
            "stages.b.kind", "must be a string; got null" },
        { "a self-dependency", TwoProbes("""{ "kind": "probe", "depends_on": ["b"] }"""), [],
            "stages.b.depends_on", "a stage cannot depend on itself" },
        { "a null dependency", TwoProbes("""{ "kind": "probe", "depends_on": ["a", null] }"""), [],
            "stages.b.depends_on[1]", "must be a string; got null" },
        { "an empty dependency", TwoProbes("""{ "kind": "probe", "depends_on": [""] }"""), [],
            "stages.b.depends_on[0]", "is empty; name one of this run's stages: a, b" },
        { "depends_on as a string", TwoProbes("""{ "kind": "probe", "depends_on": "a" }"""), [],
            "stages.b.depends_on", "must be an array of strings; got the string 'a'" },
        { "params as an array", TwoProbes("""{ "kind": "probe", "params": [] }"""), [],
            "stages.b.params", "must be an object; got an empty array" },
        { "an integer as a string (was System.Nullable`1[System.Int32])", OneStage("shard", """{ "threads": "4" }"""), [],
            "stages.s.params.threads", "must be an integer; got the string '4'" },
        { "an integer too large for its type", OneStage("probe", """{ "payload_bytes": 99999999999 }"""), [],
            "stages.s.params.payload_bytes", "must be an integer between -2147483648 and 2147483647; got the number 99999999999" },
        { "an integer with a fraction", OneStage("probe", """{ "payload_bytes": 1.5 }"""), [],
            "stages.s.params.payload_bytes", "must be an integer (whole digits, no fraction or exponent); got the number 1.5" },
        { "a number that overflows to infinity", OneStage("probe", """{ "seconds": 1e400 }"""), [],
            "stages.s.params.seconds", "must be a number within ±1.8e308; got the number 1e400" },
        { "NaN as a string", OneStage("probe", """{ "seconds": "NaN" }"""), [],
            "stages.s.params.seconds", "must be a number; got the string 'NaN'" },
        { "a string as a number", OneStage("train", """{ "device": 0 }"""), [],
            "stages.s.params.device", "must be a string; got the number 0" },
        { "a boolean as a string", OneStage("train", """{ "model": { "minimal_unroll": "yes" } }"""), [],
            "stages.s.params.model.minimal_unroll", "must be true or false; got the string 'yes'" },
        { "an object as an array", OneStage("train", """{ "optimizer": [] }"""), [],
            "stages.s.params.optimizer", "must be an object; got an empty array" },
        { "an enum name that does not exist", OneStage("train", """{ "optimizer": { "kind": "rmsprop" } }"""), [],
            "stages.s.params.optimizer.kind", "must be one of 'sgd', 'adam', 'adamw'; got the string 'rmsprop'" },
        { "an enum as its number", OneStage("train", """{ "optimizer": { "kind": 1 } }"""), [],
            "stages.s.params.optimizer.kind", "must be one of 'sgd', 'adam', 'adamw'; got the number 1" },
        { "a list of strings as one string", OneStage("neural-fit", """{ "layers": "conv1" }"""), [],
            "stages.s.params.layers", "must be an array of strings; got the string 'conv1'" },
        { "a list of enum names holding a number", OneStage("neural-fit", """{ "methods": ["pls", 2] }"""), [],
            "stages.s.params.methods[1]", "must be one of 'pls', 'ridge'; got the number 2" },
        { "a null inside a list of objects", OneStage("virtual-monkey", """{ "areas": [null] }"""), [],
            "stages.s.params.areas[0]", "must be an object; got null" },
        { "a required field of a list item missing", OneStage("virtual-monkey", """{ "areas": [{ "region": "V4" }] }"""), [],
            "stages.s.params.areas[0].layer", "is required; give a string" },
        { "a misspelt field deep down", OneStage("train", """{ "checkpoint": { "every_minute": 5 } }"""), [],
            "stages.s.params.checkpoint.every_minute", "unknown field; known fields here: every_minutes, every_steps, keep, keep_final" },
        { "a mistyped --set", OneStage("probe", "{}"), ["stages.s.params.seconds=abc"],
            "stages.s.params.seconds", "must be a number; got the string 'abc'" },
        { "a --set path with an empty part", OneStage("probe", "{}"), ["stages..params=1"],
            "--set", "'stages..params' has an empty part; name each field of the path, e.g. stages.shards.params.seed=7" },
        { "a --set nested past the limit", OneStage("probe", "{}"), ["stages.s.params" + string.Concat(Enumerable.Repeat(".x", 70)) + "=1"],
            "--set", "nests the RunSpec more than 64 levels deep; set a field that exists, e.g. stages.shards.params.seed=7" },
        { "a field given twice", """{ "name": "x", "name": "y", "stages": {} }""", [],
            "RunSpec", "is not valid JSON (Duplicate property 'name' encountered during deserialization.)" },
        { "half of a surrogate pair", """{ "name": "\ud800", "stages": {} }""", [],
            "RunSpec", "holds a \\u escape that is half of a surrogate pair (\\ud800-\\udfff alone); write the character itself or both halves" },
        { "a unicode stage name", """{ "name": "x", "stages": { "ステージ": { "kind": "probe" } } }""", [],
            "stages.ステージ", "stage names use lower-case letters, digits, '-' and '_' (at most 64 characters)" },
        { "the virtual monkey's latency", OneStage("virtual-monkey", """{ "areas": [{ "region": "V4", "layer": "conv3", "latency_steps": 99 }] }"""), [],
            "stages.s.params.areas[0].latency_steps", "must be between 0 and 25 steps, got 99" },
    };

    [Theory]
    [MemberData(nameof(Mistakes))]
    public void Each_mistake_is_refused_under_its_field_saying_what_json_it_needs(string what, string json, string[] overrides, string field, string message)
    {
        var e = Assert.Throws<RunSpecException>(() => RunSpecLoader.Load(json, overrides));

        var expected = new ValidationError(field, message);
        if (!e.Errors.Contains(expected)) Assert.Fail($"{what}: expected \"{expected}\", got:\n{string.Join("\n", e.Errors)}");
        Assert.Empty(RunSpecMutationTests.BrokenPromises(e));
    }

    [Fact]
    public void Every_mistake_in_a_spec_is_listed_in_one_refusal()
    {
        var e = Assert.Throws<RunSpecException>(() => RunSpecLoader.Load("""
            { "name": "x", "stages": {
                "a": { "kind": "probe", "depends_on": ["a", "a"] },
                "b": { "kind": "probe", "params": { "seconds": "1", "payload_bytes": true } },
                "c": { "kind": "train", "params": { "optimizer": { "kind": "rmsprop", "lr": 1 } } } } }
            """));

        Assert.Equal(
            [
                "stages.a.depends_on: a stage cannot depend on itself",
                "stages.a.depends_on[1]: 'a' is listed twice; list each dependency once",
                "stages.b.params.seconds: must be a number; got the string '1'",
                "stages.b.params.payload_bytes: must be an integer; got true",
                "stages.c.params.optimizer.kind: must be one of 'sgd', 'adam', 'adamw'; got the string 'rmsprop'",
                "stages.c.params.optimizer.lr: unknown field; known fields here: kind, learning_rate, momentum, nesterov, weight_decay, beta1, beta2, eps",
            ],
            e.Errors.Select(x => x.ToString()));
    }

    [Fact]
    public void Null_params_and_an_empty_depends_on_mean_the_defaults()
    {
        var (_, plan, _) = RunSpecLoader.Load(TwoProbes("""{ "kind": "probe", "params": null, "depends_on": [] }"""));

        Assert.Equal(new ProbeParams(), plan.Single(s => s.Name == "b").Params);
        Assert.Empty(plan.Single(s => s.Name == "b").DependsOn);
    }

    [Fact]
    public void A_long_chain_of_stages_loads_in_dependency_order()
    {
        var stages = Enumerable.Range(0, 5000).Select(i => $"\"s{i}\": {{ \"kind\": \"probe\"{(i == 0 ? "" : $", \"depends_on\": [\"s{i - 1}\"]")} }}");
        var (_, plan, _) = RunSpecLoader.Load($$"""{ "name": "chain", "stages": { {{string.Join(", ", stages.Reverse())}} } }""");

        Assert.Equal(Enumerable.Range(0, 5000).Select(i => $"s{i}"), plan.Select(p => p.Name));
    }
}
