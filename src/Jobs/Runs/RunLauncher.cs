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
        var path = Presets.Resolve(presetOrPath, options.Value.PresetsFolder, allowPaths);
        var json = await File.ReadAllTextAsync(path, ct);
        return await LaunchSpecAsync(json, Path.GetFileNameWithoutExtension(path), overrides, noCache, scheduleId, dataRoots, ct);
    }

    public async Task<(long RunId, int Stages)> LaunchSpecAsync(string specJson, string? preset, IEnumerable<string>? overrides, bool noCache,
        long? scheduleId = null, DataRoots? dataRoots = null, CancellationToken ct = default)
    {
        var given = overrides?.ToList() ?? [];
        var (spec, plan, json) = RunSpecLoader.Load(specJson, given, preset ?? "spec");
        if (dataRoots?.Check(plan) is { Count: > 0 } outside) throw new RunSpecException(outside);
        var id = await engine.LaunchAsync(spec, plan, json, preset, noCache, scheduleId, given, ct);
        return (id, plan.Count);
    }
}
