namespace Pipeline.Jobs.Tests.Engine;

/// <summary>Small RunSpecs built from the diagnostic probe stage.</summary>
public static class Specs
{
    public static string Probe(params (string Name, string Params, string[] DependsOn)[] stages) =>
        "{ \"name\": \"engine-test\", \"stages\": {" +
        string.Join(",", stages.Select(s => $"\"{s.Name}\": {{ \"kind\": \"probe\", \"params\": {s.Params}, \"depends_on\": [{string.Join(",", s.DependsOn.Select(d => $"\"{d}\""))}] }}")) +
        "} }";

    /// <summary>source → n parallel branches → join.</summary>
    public static string FanOutFanIn(int branches, double seconds, string note = "x") => Probe(
        [("source", $"{{ \"note\": \"{note}\" }}", []),
         .. Enumerable.Range(0, branches).Select(i => ($"branch{i}", $"{{ \"seconds\": {seconds.ToString(System.Globalization.CultureInfo.InvariantCulture)}, \"note\": \"b{i}\" }}", new[] { "source" })),
         ("join", "{}", [.. Enumerable.Range(0, branches).Select(i => $"branch{i}")])]);
}
