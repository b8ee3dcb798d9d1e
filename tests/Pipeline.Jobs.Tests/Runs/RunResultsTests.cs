using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Pipeline.Jobs.Cli;
using Pipeline.Jobs.RunStore;
using Pipeline.Jobs.Runs;
using Pipeline.Jobs.Tests.Engine;
using Pipeline.Stages.Artifacts;

namespace Pipeline.Jobs.Tests.Runs;

/// <summary>Results found where a user can open them, overrides kept with the run, and run stores from before overrides upgraded.</summary>
public class RunResultsTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task With_the_blob_store_figures_and_small_results_are_copied_to_the_data_folder_and_the_rest_is_named()
    {
        await using var env = await PipelineTestEnvironment.CreateAsync(azureBlobs: true);
        var host = await env.StartHostAsync(worker: true);
        var runId = await PipelineTestEnvironment.LaunchAsync(host, Specs.Probe(("only", """{ "payload_bytes": 2048 }""", [])));
        var run = await PipelineTestEnvironment.WaitForRunAsync(host, runId, Timeout);
        var results = host.Services.GetRequiredService<RunResults>();

        var view = await results.CollectAsync(run);
        var stage = Assert.Single(view.Stages);
        var copy = Path.Combine(env.DataFolder, "results", $"run-{runId}", "only", "probe.json");
        Assert.Equal([copy], stage.Files);
        var artifact = run.Stages[0].Artifacts.Single(a => a.Path.EndsWith("/probe.json", StringComparison.Ordinal));
        await using (var stored = await host.Services.GetRequiredService<IArtifactStore>().OpenReadAsync(artifact.Path))
        using (var bytes = new MemoryStream())
        {
            await stored.CopyToAsync(bytes);
            Assert.Equal(bytes.ToArray(), await File.ReadAllBytesAsync(copy));
        }
        // The binary payload stays in the store, named with the command that fetches it.
        Assert.Equal(["payload.bin"], stage.Elsewhere.Select(a => Path.GetFileName(a.Path)));
        Assert.False(File.Exists(Path.Combine(Path.GetDirectoryName(copy)!, "payload.bin")));
        using (var text = new StringWriter())
        {
            CliOutput.PrintResults(view, text);
            Assert.Contains($"  only  {copy}\n", text.ToString(), StringComparison.Ordinal);
            Assert.Contains("in the store only: payload.bin (2 KiB)", text.ToString(), StringComparison.Ordinal);
            Assert.Contains($"'pipeline artifacts get {runId} NAME [--out PATH]'", text.ToString(), StringComparison.Ordinal);
        }

        // A local copy that no longer matches the store's sha256 is replaced, not trusted.
        await File.WriteAllTextAsync(copy, "{ \"edited\": true }");
        await results.CollectAsync(run);
        Assert.Equal(artifact.Sha256, await Sha256Stream.HashAsync(File.OpenRead(copy)));
    }

    [Fact]
    public async Task Overrides_are_kept_with_the_run_and_listed_with_its_headline()
    {
        await using var env = await PipelineTestEnvironment.CreateAsync();
        var host = await env.StartHostAsync(worker: true);
        var spec = Specs.Probe(("only", "{}", []));
        var plain = await PipelineTestEnvironment.LaunchAsync(host, spec);
        var changed = await PipelineTestEnvironment.LaunchAsync(host, spec, "stages.only.params.note=wider", "stages.only.params.payload_bytes=16");
        await PipelineTestEnvironment.WaitForRunAsync(host, plain, Timeout);
        await PipelineTestEnvironment.WaitForRunAsync(host, changed, Timeout);

        var queries = host.Services.GetRequiredService<RunQueries>();
        var list = await queries.ListAsync(10);
        Assert.Equal(["stages.only.params.note=wider", "stages.only.params.payload_bytes=16"], list.Single(r => r.Id == changed).Overrides);
        Assert.Empty(list.Single(r => r.Id == plain).Overrides);
        Assert.Equal(new RunHeadline("only", "inputs", "inputs 0", 0), list.Single(r => r.Id == changed).Headline);
        Assert.Equal(["stages.only.params.note=wider", "stages.only.params.payload_bytes=16"], (await queries.GetAsync(changed))!.Overrides);
    }

    [Fact]
    public async Task A_postgresql_run_store_from_before_overrides_is_upgraded_and_keeps_its_runs()
    {
        await using var env = await PipelineTestEnvironment.CreateAsync();
        await UpgradesFromVersion1Async(() => env.OpenDb(), "ALTER TABLE pipeline.runs DROP COLUMN \"OverridesJson\"",
            "ALTER TABLE pipeline.schedules DROP COLUMN \"Preset\", DROP COLUMN \"OverridesJson\", DROP COLUMN \"Misfire\", ALTER COLUMN \"SpecJson\" SET NOT NULL",
            "DROP TABLE pipeline.search_trials; DROP TABLE pipeline.trial_rungs; ALTER TABLE pipeline.stages DROP COLUMN \"TrialId\"; " +
            "DROP TABLE pipeline.stage_logs; ALTER TABLE pipeline.stages DROP COLUMN \"NoCache\"");
    }

    [Fact]
    public async Task An_embedded_sqlite_run_store_from_before_overrides_is_upgraded_and_keeps_its_runs()
    {
        var file = Path.Combine(Path.GetTempPath(), $"pipeline-schema-{Guid.NewGuid():N}.db");
        try
        {
            await UpgradesFromVersion1Async(() => new RunStoreContext(new DbContextOptionsBuilder<RunStoreContext>().UseSqlite($"Data Source={file}").Options),
                "ALTER TABLE runs DROP COLUMN \"OverridesJson\"",
                "ALTER TABLE schedules DROP COLUMN \"Preset\"; ALTER TABLE schedules DROP COLUMN \"OverridesJson\"; ALTER TABLE schedules DROP COLUMN \"Misfire\"",
                "DROP TABLE search_trials; DROP TABLE trial_rungs; DROP INDEX \"IX_stages_TrialId\"; ALTER TABLE stages DROP COLUMN \"TrialId\"; " +
                "DROP TABLE stage_logs; ALTER TABLE stages DROP COLUMN \"NoCache\"");
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            File.Delete(file);
        }
    }

    /// <summary>
    /// A store made by schema version 1 (no overrides column, schedules that always hold a RunSpec) with a run in it,
    /// then the start-up check of today.
    /// </summary>
    private static async Task UpgradesFromVersion1Async(Func<RunStoreContext> open, string dropOverridesColumn, string backToVersion1Schedules, string dropSearches)
    {
        await using (var db = open())
        {
            await RunStoreSchema.EnsureAsync(db);
            db.Runs.Add(new Run { Name = "old", SpecJson = "{}", CreatedAt = DateTime.UtcNow });
            await db.SaveChangesAsync();
            await db.Database.ExecuteSqlRawAsync(dropOverridesColumn);
            await db.Database.ExecuteSqlRawAsync(backToVersion1Schedules);
            await db.Database.ExecuteSqlRawAsync(dropSearches);
            await db.SchemaVersions.ExecuteDeleteAsync();
            db.SchemaVersions.Add(new SchemaVersion { Version = 1, AppliedAt = DateTime.UtcNow });
            await db.SaveChangesAsync();
        }
        await using (var db = open())
        {
            await RunStoreSchema.EnsureAsync(db);
            await RunStoreSchema.EnsureAsync(db); // a second start finds nothing to do
            Assert.Equal(RunStoreSchema.CurrentVersion, await db.SchemaVersions.MaxAsync(v => v.Version));
            var old = await db.Runs.SingleAsync();
            Assert.Equal(("old", null), (old.Name, old.OverridesJson));
            old.OverridesJson = "[\"stages.x.params.seed=1\"]";
            db.Schedules.Add(new Schedule { Name = "nightly", Cron = "0 2 * * *", Preset = "smoke", OverridesJson = "[]", Misfire = ScheduleMisfire.Skip, CreatedAt = DateTime.UtcNow });
            await db.SaveChangesAsync();
            var schedule = await db.Schedules.AsNoTracking().SingleAsync();
            Assert.Equal(("smoke", null, ScheduleMisfire.Skip), (schedule.Preset, schedule.SpecJson, schedule.Misfire));
            db.SearchTrials.Add(new SearchTrial { SearchStageId = 1, Number = 0, AssignmentJson = "{}", Status = SearchTrialStatus.Pruned, PrunedAtStep = 4, ProposedAt = DateTime.UtcNow });
            db.TrialRungs.Add(new TrialRung { SearchStageId = 1, TrialId = 1, Step = 4, Value = 0.5, Continued = false, At = DateTime.UtcNow });
            await db.SaveChangesAsync();
            var trial = await db.SearchTrials.AsNoTracking().SingleAsync();
            Assert.Equal((SearchTrialStatus.Pruned, (long?)4), (trial.Status, trial.PrunedAtStep));
            db.Stages.Add(new Stage { RunId = old.Id, Name = "search-t00", Kind = "probe", Queue = "default", ParamsJson = "{}", TrialId = trial.Id, Status = StageStatus.Pruned });
            await db.SaveChangesAsync();
            Assert.Equal((trial.Id, StageStatus.Pruned), await db.Stages.Select(s => new ValueTuple<long?, StageStatus>(s.TrialId, s.Status)).SingleAsync());
        }
    }
}
