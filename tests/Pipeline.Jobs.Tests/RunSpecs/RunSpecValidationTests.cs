using Pipeline.Jobs.RunSpecs;
using Pipeline.Stages.Diagnostics;

namespace Pipeline.Jobs.Tests.RunSpecs;

public class RunSpecValidationTests
{
    private static RunSpecException Invalid(string json, params string[] overrides) =>
        Assert.Throws<RunSpecException>(() => RunSpecLoader.Load(json, overrides));

    [Fact]
    public void A_valid_spec_expands_to_stages_in_dependency_order_with_defaults_filled_in()
    {
        var (_, plan, _) = RunSpecLoader.Load("""
            { "name": "x", "stages": {
                "join": { "kind": "probe", "depends_on": ["a", "b"] },
                "a": { "kind": "probe", "params": { "seconds": 1 } },
                "b": { "kind": "probe", "depends_on": ["a"] } } }
            """);

        Assert.Equal(["a", "b", "join"], plan.Select(p => p.Name));
        Assert.Equal(1024, ((ProbeParams)plan[0].Params).PayloadBytes);
        Assert.Contains("\"payload_bytes\":1024", plan[0].CanonicalParams);
    }

    [Fact]
    public void Equal_parameters_written_differently_have_the_same_canonical_form()
    {
        var (_, a, _) = RunSpecLoader.Load("""{ "name": "x", "stages": { "s": { "kind": "probe" } } }""");
        var (_, b, _) = RunSpecLoader.Load("""{ "name": "x", "stages": { "s": { "kind": "probe", "params": { "payload_bytes": 1024, "seconds": 0.0 } } } }""");

        Assert.Equal(a[0].CanonicalParams, b[0].CanonicalParams);
    }

    [Fact]
    public void Errors_name_the_field_and_list_every_problem_at_once()
    {
        var e = Invalid("""
            { "name": "", "stages": {
                "a": { "kind": "teleport" },
                "b": { "kind": "probe", "params": { "seconds": -1 }, "depends_on": ["ghost"] },
                "Bad Name": { "kind": "probe" } } }
            """);

        Assert.Contains(e.Errors, x => x.Field == "name");
        Assert.Contains(e.Errors, x => x.Field == "stages.a.kind" && x.Message.Contains("probe", StringComparison.Ordinal));
        Assert.Contains(e.Errors, x => x.Field == "stages.b.params.seconds");
        Assert.Contains(e.Errors, x => x.Field == "stages.b.depends_on" && x.Message.Contains("ghost", StringComparison.Ordinal));
        Assert.Contains(e.Errors, x => x.Field == "stages.Bad Name");
    }

    [Fact]
    public void Unknown_and_mistyped_parameters_are_errors_not_silently_ignored()
    {
        var unknown = Invalid("""{ "name": "x", "stages": { "a": { "kind": "probe", "params": { "secnds": 3 } } } }""");
        var mistyped = Invalid("""{ "name": "x", "stages": { "a": { "kind": "probe", "params": { "seconds": "three" } } } }""");
        var topLevel = Invalid("""{ "name": "x", "stagse": {} }""");

        Assert.Equal("stages.a.params.secnds", Assert.Single(unknown.Errors).Field);
        Assert.Contains("seconds", unknown.Errors[0].Message, StringComparison.Ordinal);
        Assert.Equal("stages.a.params.seconds", Assert.Single(mistyped.Errors).Field);
        Assert.Contains(topLevel.Errors, x => x.Field == "stagse");
    }

    [Fact]
    public void A_dependency_cycle_is_reported_with_its_path()
    {
        var e = Invalid("""{ "name": "x", "stages": { "a": { "kind": "probe", "depends_on": ["c"] }, "b": { "kind": "probe", "depends_on": ["a"] }, "c": { "kind": "probe", "depends_on": ["b"] } } }""");

        Assert.Contains("a -> c -> b -> a", Assert.Single(e.Errors).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Set_overrides_apply_json_values_and_create_missing_objects()
    {
        var (_, plan, json) = RunSpecLoader.Load("""{ "name": "x", "stages": { "a": { "kind": "probe" } } }""",
            ["stages.a.params.seconds=2.5", "stages.a.params.note=hello world", "name=renamed"]);

        var p = (ProbeParams)plan[0].Params;
        Assert.Equal(2.5, p.Seconds);
        Assert.Equal("hello world", p.Note);
        Assert.Contains("\"renamed\"", json, StringComparison.Ordinal);
        Assert.Equal("--set", Assert.Single(Invalid("""{ "name": "x", "stages": {} }""", "no-equals-sign").Errors).Field);
    }

    [Fact]
    public void Malformed_json_is_reported_as_such()
    {
        var e = Invalid("{ \"name\": ");

        Assert.Contains("not valid JSON", Assert.Single(e.Errors).Message, StringComparison.Ordinal);
    }
}
