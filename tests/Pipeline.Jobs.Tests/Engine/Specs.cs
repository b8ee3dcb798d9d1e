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

    /// <summary>Tiny synthetic shards, then a narrow rgc-shallow (T 6) trained for <paramref name="steps"/> steps of 32
    /// images, checkpointing every <paramref name="every"/> steps and at each epoch end (every train/32 steps);
    /// <paramref name="extraStages"/> (",\n\"name\": {…}") adds stages after it.</summary>
    public static string Train(int steps, int every, int train = 256, string extraStages = "") => $$"""
        {
          "name": "train-test",
          "stages": {
            "shards": { "kind": "shard", "params": { "source": { "kind": "synthetic", "num_classes": 4, "image_size": 32, "train_count": {{train}}, "val_count": 32 } } },
            "train": {
              "kind": "train",
              "depends_on": ["shards"],
              "params": {
                "model": { "preset": "rgc-shallow", "width": 0.25, "time": { "steps": 6, "image_off": null } },
                "steps": {{steps}}, "batch_size": 32, "threads": 1, "metrics_interval_seconds": 1,
                "optimizer": { "kind": "adam", "learning_rate": 0.002, "weight_decay": 0 },
                "checkpoint": { "every_steps": {{every}} }
              }
            }{{extraStages}}
          }
        }
        """;
}
