using Microsoft.Extensions.Options;
using Pipeline.Jobs.Engine;
using Pipeline.Jobs.RunSpecs;
using Pipeline.Jobs.Configuration;

namespace Pipeline.Jobs.Runs;

/// <summary>
/// The one way runs start (CLI, web API, schedules): load, override, validate, check external data, expand, launch.
/// <c>dataRoots</c> null (the CLI) reads any path; the web API passes Pipeline:DataRoots.
/// </summary>
public sealed class RunLauncher(StageEngine engine, IOptions<PipelineOptions> options)
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
        var id = await engine.LaunchAsync(spec, plan, json, preset, noCache, scheduleId, given, ct);
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
    /// whether its result would come from the cache. Throws the launch's <see cref="RunSpecException"/>.
    /// </summary>
    public Task<RunPreview> PreviewAsync(string? preset, string? specJson, IEnumerable<string>? overrides, DataRoots? dataRoots = null, CancellationToken ct = default) =>
        throw new NotImplementedException();

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
