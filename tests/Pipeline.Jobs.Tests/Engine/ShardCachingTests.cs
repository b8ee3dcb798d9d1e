using Pipeline.Jobs.RunStore;
using SkiaSharp;

namespace Pipeline.Jobs.Tests.Engine;

/// <summary>The shard stage through the engine: its cache follows the dataset folder, not just the parameters.</summary>
public class ShardCachingTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task A_folder_dataset_is_resharded_when_its_files_change_and_reused_when_they_do_not()
    {
        await using var env = await PipelineTestEnvironment.CreateAsync();
        var dataset = Path.Combine(env.DataFolder, "dataset");
        foreach (var cls in new[] { "cat", "dog" })
        {
            for (var i = 0; i < 4; i++) WritePng(Path.Combine(dataset, cls, $"{i}.png"), (byte)(cls == "cat" ? 40 * i : 255 - 40 * i));
        }
        var spec = $$"""
            { "name": "folder", "stages": { "shards": { "kind": "shard",
              "params": { "source": { "kind": "folder", "path": "{{dataset}}", "val_fraction": 0.25 }, "threads": 1 } } } }
            """;
        var host = await env.StartHostAsync(worker: true);

        var first = await PipelineTestEnvironment.WaitForRunAsync(host, await PipelineTestEnvironment.LaunchAsync(host, spec), Timeout);
        var unchanged = await PipelineTestEnvironment.WaitForRunAsync(host, await PipelineTestEnvironment.LaunchAsync(host, spec), Timeout);
        WritePng(Path.Combine(dataset, "dog", "new.png"), 7);
        var changed = await PipelineTestEnvironment.WaitForRunAsync(host, await PipelineTestEnvironment.LaunchAsync(host, spec), Timeout);

        Assert.True(first.Status == RunStatus.Succeeded, PipelineTestEnvironment.Describe(first));
        Assert.Equal(8, first.Stages[0].Summary!["train"]!.GetValue<int>() + first.Stages[0].Summary!["val"]!.GetValue<int>());
        Assert.Equal(StageStatus.Cached, unchanged.Stages[0].Status);
        Assert.Equal(StageStatus.Succeeded, changed.Stages[0].Status);
        Assert.NotEqual(first.Stages[0].ContentKey, changed.Stages[0].ContentKey);
        Assert.Equal(9, changed.Stages[0].Summary!["train"]!.GetValue<int>() + changed.Stages[0].Summary!["val"]!.GetValue<int>());
    }

    [Fact]
    public async Task A_shard_stage_on_a_missing_folder_fails_with_the_path_and_commits_no_artifact()
    {
        await using var env = await PipelineTestEnvironment.CreateAsync();
        var missing = Path.Combine(env.DataFolder, "no-such-dataset");
        var host = await env.StartHostAsync(worker: true);
        var spec = $$"""{ "name": "missing", "stages": { "shards": { "kind": "shard", "params": { "source": { "kind": "folder", "path": "{{missing}}" } } } } }""";

        var run = await PipelineTestEnvironment.WaitForRunAsync(host, await PipelineTestEnvironment.LaunchAsync(host, spec), Timeout);

        Assert.Equal(RunStatus.Failed, run.Status);
        Assert.Contains(missing, run.Stages[0].Error, StringComparison.Ordinal);
        Assert.Empty(run.Stages[0].Artifacts);
        var artifacts = Path.Combine(env.DataFolder, "artifacts");
        // Only the failed attempt's log (runs/N/logs/…), no output.
        Assert.True(!Directory.Exists(artifacts) || Directory.EnumerateFiles(artifacts, "*", SearchOption.AllDirectories)
            .All(f => f.Contains($"{Path.DirectorySeparatorChar}logs{Path.DirectorySeparatorChar}", StringComparison.Ordinal)));
    }

    private static void WritePng(string path, byte shade)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var bitmap = new SKBitmap(16, 16);
        bitmap.Erase(new SKColor(shade, (byte)(255 - shade), 128));
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, data.ToArray());
    }
}
