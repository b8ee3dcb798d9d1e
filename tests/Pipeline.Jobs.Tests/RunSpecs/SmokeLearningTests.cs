using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Pipeline.Jobs.RunStore;
using Pipeline.Jobs.Runs;
using Pipeline.Jobs.Tests.Engine;

namespace Pipeline.Jobs.Tests.RunSpecs;

/// <summary>
/// The smoke preset's models learn: every table built on a smoke run (sweeps, leaderboards, reports) must show
/// something other than chance. This trains the preset's own shards and models — the same stem, contrast and
/// optimiser — on a third of its images (3 epochs) and a narrower rgc, so it fits in CI.
/// </summary>
public class SmokeLearningTests
{
    [Fact]
    public async Task A_reduced_smoke_trains_a_basenet_and_an_rgc_shallow_to_at_least_twice_chance()
    {
        var smoke = JsonNode.Parse(File.ReadAllText(Path.Combine(PresetTests.PresetsFolder(), "smoke.json")))!.AsObject();
        var stages = smoke["stages"]!.AsObject();
        var reduced = new JsonObject
        {
            ["name"] = "smoke-reduced",
            ["stages"] = new JsonObject
            {
                ["shards"] = stages["shards"]!.DeepClone(),
                ["basenet"] = stages["basenet"]!.DeepClone(),
                ["rgc"] = stages["rgc"]!.DeepClone(),
            },
        };
        var classes = (int)stages["shards"]!["params"]!["source"]!["num_classes"]!;

        await using var env = await PipelineTestEnvironment.CreateAsync();
        var host = await env.StartHostAsync(worker: true);
        var runId = await PipelineTestEnvironment.LaunchAsync(host, reduced.ToJsonString(),
            "stages.shards.params.source.train_count=2048", "stages.shards.params.source.val_count=256",
            "stages.rgc.params.model.width=0.125", "stages.rgc.params.epochs=3",
            // One thread each: beside the other tests' torch stages, two threads oversubscribe the cores and libgomp's
            // spinning made this run six times slower in a loaded CI run.
            "stages.basenet.params.threads=1", "stages.rgc.params.threads=1");
        var run = await PipelineTestEnvironment.WaitForRunAsync(host, runId, TimeSpan.FromMinutes(10));

        Assert.True(run.Status == RunStatus.Succeeded, PipelineTestEnvironment.Describe(run));
        var results = host.Services.GetRequiredService<RunResults>();
        foreach (var name in new[] { "basenet", "rgc" })
        {
            var facts = await results.FactsAsync(run.Stages.Single(s => s.Name == name));
            var top1 = (double)facts["top1"]!;
            Assert.True(top1 >= 2.0 / classes, $"{name} ended at top-1 {top1:P1}; chance is {1.0 / classes:P0}");
        }
    }
}
