using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Pipeline.Jobs.RunStore;
using Pipeline.Jobs.Runs;
using Pipeline.Stages.Artifacts;

namespace Pipeline.Jobs.Tests.Engine;

/// <summary>libtorch's thread count belongs to an OS thread: two torch stages in one worker process must not change each other's.</summary>
public class TorchThreadsTests
{
    [Fact]
    public async Task Two_train_stages_on_two_workers_of_one_process_each_train_with_their_own_thread_count()
    {
        await using var env = await PipelineTestEnvironment.CreateAsync();
        var host = await env.StartHostAsync(worker: true, settings: new Dictionary<string, string?> { ["Pipeline:WorkerCount"] = "2" });
        // Feedforward and tiny: the point is the count each stage computes with, not the training.
        static string Train(string name, int threads) => $$"""
            "{{name}}": {
              "kind": "train",
              "depends_on": ["shards"],
              "params": {
                "model": { "preset": "basenet", "width": 0.25 },
                "steps": 8, "batch_size": 16, "threads": {{threads}}, "eval_max_samples": 16,
                "optimizer": { "kind": "adam", "learning_rate": 0.002, "weight_decay": 0 }
              }
            }
            """;
        var spec = $$"""
            { "name": "threads", "stages": {
              "shards": { "kind": "shard", "params": { "source": { "kind": "synthetic", "num_classes": 4, "image_size": 32, "train_count": 128, "val_count": 16 } } },
              {{Train("train", 1)}}, {{Train("train-2", 2)}} } }
            """;
        var runId = await PipelineTestEnvironment.LaunchAsync(host, spec);
        var run = await PipelineTestEnvironment.WaitForRunAsync(host, runId, TimeSpan.FromSeconds(150));

        Assert.True(run.Status == RunStatus.Succeeded, PipelineTestEnvironment.Describe(run));
        var store = host.Services.GetRequiredService<IArtifactStore>();
        async Task<int> ThreadsOf(string stage)
        {
            var metrics = run.Stages.Single(s => s.Name == stage).Artifacts.Single(a => a.Path.EndsWith("/metrics.json", StringComparison.Ordinal));
            await using var stream = await store.OpenReadAsync(metrics.Path);
            return (int)JsonNode.Parse(stream)!["threads"]!;
        }
        Assert.Equal(1, await ThreadsOf("train"));
        Assert.Equal(2, await ThreadsOf("train-2"));
        // They ran at the same time, on the two workers of this process.
        var (a, b) = (run.Stages.Single(s => s.Name == "train"), run.Stages.Single(s => s.Name == "train-2"));
        Assert.True(Started(a) < Ended(b) && Started(b) < Ended(a), "the two train stages did not overlap");
    }

    private static DateTime Started(StageDetail s) => s.History.Last(h => h.To == StageStatus.Running).At;

    private static DateTime Ended(StageDetail s) => s.History.Last(h => h.To == StageStatus.Succeeded).At;
}
