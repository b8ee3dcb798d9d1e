using Microsoft.Extensions.Options;
using Pipeline.Jobs.Engine;
using Pipeline.Jobs.RunSpecs;
using Pipeline.Jobs.Configuration;

namespace Pipeline.Jobs.Runs;

/// <summary>
/// The one way runs start (CLI, web API, schedules): load, override, validate, check external data, expand, launch.
/// <c>dataRoots</c> null (the CLI) reads any path; the web API passes Pipeline:DataRoots.
/// </summary>
public sealed class RunLauncher(StageEngine engine, RunQueries queries, IOptions<PipelineOptions> options)
{
    public async Task<(long RunId, int Stages)> LaunchPresetAsync(string presetOrPath, IEnumerable<string>? overrides, bool noCache,
        bool allowPaths, long? scheduleId = null, DataRoots? dataRoots = null, CancellationToken ct = default)
    {
        var (json, preset) = await ReadPresetAsync(presetOrPath, allowPaths, ct);
        return await LaunchSpecAsync(json, preset, overrides, noCache, scheduleId, dataRoots, ct);
    }

    public async Task<(long RunId, int Stages)> LaunchSpecAsync(string specJson, string? preset, IEnumerable<string>? overrides, bool noCache,
        long? scheduleId = null, DataRoots? dataRoots = null, CancellationToken ct = default)
    {
        var given = overrides?.ToList() ?? [];
        var (spec, plan, json) = Load(specJson, preset, given, dataRoots);
        var id = await engine.LaunchAsync(spec, plan, json, preset, noCache, scheduleId, given, ct: ct);
        return (id, plan.Count);
    }

    /// <summary>
    /// Everything a launch checks, without launching: a preset name (<paramref name="specJson"/> null) or a RunSpec, with
    /// overrides. Throws the <see cref="RunSpecException"/> the launch would; returns the number of stages.
    /// </summary>
    public async Task<int> CheckAsync(string? preset, string? specJson, IEnumerable<string>? overrides, DataRoots? dataRoots = null, CancellationToken ct = default)
    {
        if (specJson is null) (specJson, preset) = await ReadPresetAsync(preset!, allowPaths: false, ct);
        return Load(specJson, preset, overrides?.ToList() ?? [], dataRoots).Plan.Count;
    }

    /// <summary>
    /// What <see cref="CheckAsync"/> checks, and then the plan as a launch would run it: each stage with its dependencies and
    /// whether its result would come from the cache. A stage's content key is known before the run only when every
    /// stage it depends on would come from the cache (its inputs are then those cached outputs); the first stage that
    /// must compute makes everything after it compute too. Throws the launch's <see cref="RunSpecException"/>.
    /// </summary>
    public async Task<RunPreview> PreviewAsync(string? preset, string? specJson, IEnumerable<string>? overrides, DataRoots? dataRoots = null, bool noCache = false,
        CancellationToken ct = default)
    {
        if (specJson is null) (specJson, preset) = await ReadPresetAsync(preset!, allowPaths: false, ct);
        var (_, plan, _) = Load(specJson, preset, overrides?.ToList() ?? [], dataRoots);
        var outputs = new Dictionary<string, IReadOnlyList<Pipeline.Stages.Artifacts.ArtifactInfo>>(StringComparer.Ordinal);
        var stages = new List<PreviewStage>();
        foreach (var p in plan)
        {
            string? key = null;
            (long StageId, IReadOnlyList<Pipeline.Stages.Artifacts.ArtifactInfo> Outputs)? cached = null;
            if (!p.Kind.RunByEngine && p.DependsOn.All(outputs.ContainsKey))
            {
                key = ContentKeys.For(p.Kind, p.Params, p.CanonicalParams, p.DependsOn.ToDictionary(d => d, d => outputs[d], StringComparer.Ordinal));
                if (!noCache) cached = await queries.CachedAsync(key, ct);
            }
            if (cached is { } c) outputs[p.Name] = c.Outputs;
            stages.Add(new PreviewStage(p.Name, p.Kind.Kind, p.Kind.Queue, p.DependsOn, cached is not null, cached?.StageId, key));
        }
        return new RunPreview(stages);
    }

    /// <summary>
    /// "Run again from this stage": a new run of the stage's RunSpec and overrides in which that stage and every stage
    /// after it compute afresh while the stages before it come from the cache. A search's trial stage is not in the
    /// RunSpec: run again from its search.
    /// </summary>
    public async Task<(long RunId, int Stages)> RunAgainFromAsync(long stageId, CancellationToken ct = default)
    {
        var origin = await queries.LaunchOfStageAsync(stageId, ct);
        var (spec, plan, json) = Load(origin.SpecJson, origin.Preset, [.. origin.Overrides], null);
        if (plan.All(p => p.Name != origin.StageName))
        {
            throw new EngineException($"Stage '{origin.StageName}' was added by a search while its run ran; run again from the search stage instead.");
        }
        var fresh = new HashSet<string>(StringComparer.Ordinal) { origin.StageName };
        foreach (var p in plan.Where(p => p.DependsOn.Any(fresh.Contains))) fresh.Add(p.Name); // the plan is in dependency order
        var id = await engine.LaunchAsync(spec, plan, json, origin.Preset, noCache: false, scheduleId: null, origin.Overrides, fresh, ct);
        return (id, plan.Count);
    }

    /// <summary>
    /// The most trials the RunSpec's searches run at once (their largest <c>parallel</c>), 0 without a search or when
    /// the RunSpec does not load (the launch then reports why): what an embedded `run --wait` sizes its worker by.
    /// </summary>
    public async Task<int> SearchParallelismAsync(string presetOrPath, IEnumerable<string>? overrides, CancellationToken ct = default)
    {
        try
        {
            var (json, preset) = await ReadPresetAsync(presetOrPath, allowPaths: true, ct);
            return Load(json, preset, overrides?.ToList() ?? [], null).Plan.Select(p => p.Params).OfType<Search.SearchParams>().Select(s => s.Parallel).DefaultIfEmpty(0).Max();
        }
        catch (RunSpecException)
        {
            return 0;
        }
    }

    private async Task<(string Json, string Preset)> ReadPresetAsync(string presetOrPath, bool allowPaths, CancellationToken ct)
    {
        var path = Presets.Resolve(presetOrPath, options.Value.PresetsFolder, allowPaths);
        return (await File.ReadAllTextAsync(path, ct), Path.GetFileNameWithoutExtension(path));
    }

    private static (RunSpec Spec, IReadOnlyList<PlannedStage> Plan, string Json) Load(string specJson, string? preset, List<string> overrides, DataRoots? dataRoots)
    {
        var loaded = RunSpecLoader.Load(specJson, overrides, preset ?? "spec");
        if (dataRoots?.Check(loaded.Plan) is { Count: > 0 } outside) throw new RunSpecException(outside);
        return loaded;
    }
}
