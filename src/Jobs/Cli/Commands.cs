using System.CommandLine;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Pipeline.Jobs.Engine;
using Pipeline.Jobs.Hosting;
using Pipeline.Jobs.RunSpecs;
using Pipeline.Stages.Artifacts;
using Pipeline.Jobs.Configuration;
using Pipeline.Jobs.Runs;

namespace Pipeline.Jobs.Cli;

/// <summary>The `pipeline` command line (DESIGN.md "CLI").</summary>
public static class Commands
{
    private static readonly Option<bool> JsonOption = new("--json") { Description = "Print JSON instead of text" };

    public static RootCommand Build()
    {
        var root = new RootCommand("ConvRNN Pipeline: reproduce and extend task-driven convolutional recurrent models of the ventral stream.");
        root.Subcommands.Add(RunCommand());
        root.Subcommands.Add(RunsCommand());
        root.Subcommands.Add(StagesCommand());
        root.Subcommands.Add(ArtifactsCommand());
        root.Subcommands.Add(WorkerCommand());
        root.Subcommands.Add(ScheduleCommands.Build());
        root.Subcommands.Add(ModelsCommands.Build());
        root.Subcommands.Add(BenchCommands.Build());
        root.Subcommands.Add(NeuralCommands.Build());
        return root;
    }

    public static async Task<int> InvokeAsync(string[] args)
    {
        var parsed = Build().Parse(args);
        if (parsed.Errors.Count > 0 && parsed.Action is not System.CommandLine.Help.HelpAction)
        {
            foreach (var e in parsed.Errors) Console.Error.WriteLine(e.Message);
            Console.Error.WriteLine("Run 'pipeline --help' for usage.");
            return CliOutput.BadInput;
        }
        try
        {
            // No ProcessTerminationTimeout: System.CommandLine would end the process 2 s after SIGTERM/Ctrl-C, in the middle of
            // a stage's hand-back (and of libtorch calls: exit 139). The host's console lifetime handles both signals
            // instead and waits for the workers' grace period (Pipeline:ShutdownGracePeriod).
            return await parsed.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null });
        }
        catch (RunSpecException e)
        {
            return CliOutput.Error(e.Message);
        }
        catch (EngineException e)
        {
            return CliOutput.Error(e.Message);
        }
        catch (Schedules.ScheduleException e)
        {
            return CliOutput.Error(e.Message);
        }
        catch (Pipeline.Stages.Models.ModelSpecException e)
        {
            return CliOutput.Error(e.Message);
        }
        catch (OptionsValidationException e)
        {
            return CliOutput.Error("Invalid configuration:\n  " + string.Join("\n  ", e.Failures));
        }
        catch (OperationCanceledException)
        {
            // Ctrl-C / SIGTERM before the command got going (e.g. while waiting for PostgreSQL at start-up).
            return CliOutput.Error("Stopped.", CliOutput.RunFailed);
        }
    }

    private static Command RunCommand()
    {
        var preset = new Option<string>("--preset") { Description = "Preset name (presets/NAME.json) or path to a RunSpec JSON file", Required = true };
        var set = new Option<string[]>("--set") { Description = "Override a RunSpec field: key.path=value (repeatable)", AllowMultipleArgumentsPerToken = false };
        var wait = new Option<bool>("--wait") { Description = "Wait for the run to finish (embedded mode runs it in this process)" };
        var noCache = new Option<bool>("--no-cache") { Description = "Run every stage even when a cached result exists" };
        var workers = new Option<int?>("--workers") { Description = "With --wait in embedded mode: stages run at once in this process; default the RunSpec's largest search parallel, else Pipeline:WorkerCount (1)" };
        var cmd = new Command("run", "Launch a run from a preset or RunSpec file") { preset, set, wait, noCache, workers, JsonOption };
        cmd.SetAction(async (p, ct) =>
        {
            var mode = ModeOf();
            var slots = p.GetValue(workers) ?? (p.GetValue(wait) && mode.EmbeddedDatabase ? await SearchSlotsAsync(p.GetValue(preset)!, p.GetValue(set), ct) : null);
            var settings = slots is { } n ? new Dictionary<string, string?> { ["Pipeline:WorkerCount"] = n.ToString(System.Globalization.CultureInfo.InvariantCulture) } : null;
            using var host = PipelineHost.Build(worker: p.GetValue(wait) && mode.EmbeddedDatabase, settings, schedules: false);
            await host.StartAsync(ct);
            try
            {
                var (runId, stages) = await host.Services.GetRequiredService<RunLauncher>()
                    .LaunchPresetAsync(p.GetValue(preset)!, p.GetValue(set), p.GetValue(noCache), allowPaths: true, ct: ct);
                if (!p.GetValue(wait))
                {
                    if (p.GetValue(JsonOption)) CliOutput.Json(new { id = runId });
                    else
                    {
                        Console.WriteLine($"run {runId} launched ({stages} stages). Follow it with: pipeline runs show {runId}");
                        if (mode.EmbeddedDatabase) Console.WriteLine("Embedded mode: it executes while a worker runs here ('pipeline worker'), or launch with --wait.");
                    }
                    return CliOutput.Ok;
                }
                return await FollowAsync(host, runId, p.GetValue(JsonOption), ct);
            }
            finally
            {
                await host.StopAsync(CancellationToken.None);
            }
        });
        return cmd;
    }

    /// <summary>Follows the run until it ends or Ctrl-C / SIGTERM stops the host (exit 1; the run stays resumable).</summary>
    internal static async Task<int> FollowAsync(IHost host, long runId, bool json, CancellationToken ct)
    {
        var queries = host.Services.GetRequiredService<RunQueries>();
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(ct, host.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping);
        RunDetail run;
        try
        {
            run = await RunWaiter.WaitAsync(queries, runId, quiet: json, stopping.Token);
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine($"Interrupted: running stages are handed back after checkpointing. Continue run {runId} with 'pipeline runs retry {runId} --wait' " +
                                    $"(or the same 'run' command: finished stages come from the cache, training resumes from its checkpoint), or cancel it with 'pipeline runs cancel {runId}'.");
            return CliOutput.RunFailed;
        }
        if (json) CliOutput.Json(run);
        else await RunWaiter.PrintResultsAsync(host.Services.GetRequiredService<RunResults>(), run, ct);
        return run.Status == RunStore.RunStatus.Succeeded ? CliOutput.Ok : CliOutput.RunFailed;
    }

    private static Command RunsCommand()
    {
        var limit = new Option<int>("--limit") { Description = "How many runs", DefaultValueFactory = _ => 20 };
        var list = new Command("list", "List recent runs") { limit, JsonOption };
        list.SetAction(async (p, ct) =>
        {
            using var host = await StartedHostAsync(ct);
            var runs = await host.Services.GetRequiredService<RunQueries>().ListAsync(p.GetValue(limit), ct);
            if (p.GetValue(JsonOption)) CliOutput.Json(runs);
            else CliOutput.PrintRunList(runs);
            return CliOutput.Ok;
        });

        var id = new Argument<long>("run-id") { Description = "Run id" };
        var show = new Command("show", "Show a run's stages, states and artifacts") { id, JsonOption };
        show.SetAction(async (p, ct) =>
        {
            using var host = await StartedHostAsync(ct);
            var run = await host.Services.GetRequiredService<RunQueries>().GetAsync(p.GetValue(id), ct)
                ?? throw new EngineException($"Run {p.GetValue(id)} does not exist.");
            if (p.GetValue(JsonOption)) CliOutput.Json(run);
            else CliOutput.PrintRun(run);
            return CliOutput.Ok;
        });

        var cancel = new Command("cancel", "Cancel every unfinished stage of a run") { id };
        cancel.SetAction(async (p, ct) => await WithEngineAsync((e, c) => e.CancelRunAsync(p.GetValue(id), c), $"cancellation requested for run {p.GetValue(id)}", ct));
        var wait = new Option<bool>("--wait") { Description = "Wait for the run to finish (embedded mode runs it in this process)" };
        var retry = new Command("retry", "Retry every failed or cancelled stage of a run") { id, wait };
        retry.SetAction(async (p, ct) => await RetryAsync(p.GetValue(wait), runId: p.GetValue(id), stageId: null, ct));
        return new Command("runs", "Inspect and control runs") { list, show, cancel, retry, CompareCommand() };
    }

    private static Command CompareCommand()
    {
        var ids = new Argument<long[]>("run-ids") { Description = "Two or more run ids", Arity = ArgumentArity.OneOrMore };
        var all = new Option<bool>("--all") { Description = "Show every param and metric, not only those that differ" };
        var compare = new Command("compare", "Print the params and metrics that differ between runs, stage by stage (matched by stage name)") { ids, all, JsonOption };
        compare.SetAction(async (p, ct) =>
        {
            var wanted = p.GetValue(ids)!;
            if (wanted.Distinct().Count() < 2)
            {
                return CliOutput.Error($"runs compare needs at least two different run ids (got {(wanted.Length == 0 ? "none" : string.Join(", ", wanted))}); see 'pipeline runs list'.");
            }
            using var host = await StartedHostAsync(ct);
            var runs = await host.Services.GetRequiredService<RunQueries>().GetManyAsync(wanted.Distinct(), ct);
            var results = host.Services.GetRequiredService<RunResults>();
            var flattened = new List<IReadOnlyList<KeyValuePair<string, string>>>();
            foreach (var run in runs)
            {
                var facts = new Dictionary<string, System.Text.Json.Nodes.JsonObject>();
                foreach (var stage in run.Stages) facts[stage.Name] = await results.FactsAsync(stage, ct);
                flattened.Add(RunComparison.Flatten(run, facts));
            }
            var keys = RunComparison.Compare(flattened, p.GetValue(all));
            if (p.GetValue(JsonOption)) CliOutput.Json(new { runs = runs.Select(r => r.Id), keys });
            else CliOutput.PrintComparison(runs, keys, p.GetValue(all));
            return CliOutput.Ok;
        });
        return compare;
    }

    private static Command StagesCommand()
    {
        var id = new Argument<long>("stage-id") { Description = "Stage id (see 'pipeline runs show')" };
        var wait = new Option<bool>("--wait") { Description = "Wait for the run to finish (embedded mode runs it in this process)" };
        var retry = new Command("retry", "Retry a failed or cancelled stage; the run resumes from there") { id, wait };
        retry.SetAction(async (p, ct) => await RetryAsync(p.GetValue(wait), runId: null, stageId: p.GetValue(id), ct));
        var cancel = new Command("cancel", "Cancel a stage (a running one stops within a heartbeat)") { id };
        cancel.SetAction(async (p, ct) => await WithEngineAsync((e, c) => e.CancelAsync(p.GetValue(id), ct: c), $"cancellation requested for stage {p.GetValue(id)}", ct));
        var rerunWait = new Option<bool>("--wait") { Description = "Wait for the run to finish (embedded mode runs it in this process)" };
        var rerun = new Command("rerun", "Run a finished stage again in place (e.g. its artifacts were lost), then the stages after it") { id, rerunWait };
        rerun.SetAction(async (p, ct) => await ControlAndFollowAsync(p.GetValue(rerunWait), (e, c) => e.RerunAsync(p.GetValue(id), c), stageId: p.GetValue(id), $"rerun of stage {p.GetValue(id)} queued", ct));
        return new Command("stages", "Control single stages") { retry, rerun, cancel };
    }

    private static Task<int> RetryAsync(bool wait, long? runId, long? stageId, CancellationToken ct) =>
        ControlAndFollowAsync(wait, (e, c) => stageId is { } s ? e.RetryAsync(s, c) : e.RetryRunAsync(runId!.Value, c), stageId,
            $"retry of {(stageId is null ? $"run {runId}" : $"stage {stageId}")} queued", ct, runId);

    /// <summary>An engine command on a stage or run, then (with --wait) following the run; embedded mode executes it here.</summary>
    private static async Task<int> ControlAndFollowAsync(bool wait, Func<StageEngine, CancellationToken, Task> action, long? stageId, string done,
        CancellationToken ct, long? runId = null)
    {
        using var host = PipelineHost.Build(worker: wait && ModeOf().EmbeddedDatabase, schedules: false);
        await host.StartAsync(ct);
        try
        {
            await action(host.Services.GetRequiredService<StageEngine>(), ct);
            if (stageId is { } s) runId = await host.Services.GetRequiredService<RunQueries>().RunOfStageAsync(s, ct);
            Console.WriteLine(done);
            return wait ? await FollowAsync(host, runId!.Value, json: false, ct) : CliOutput.Ok;
        }
        finally
        {
            await host.StopAsync(CancellationToken.None);
        }
    }

    private static Command ArtifactsCommand()
    {
        var runId = new Argument<long>("run-id") { Description = "Run id" };
        var list = new Command("list", "List a run's artifacts") { runId, JsonOption };
        list.SetAction(async (p, ct) =>
        {
            using var host = await StartedHostAsync(ct);
            var run = await host.Services.GetRequiredService<RunQueries>().GetAsync(p.GetValue(runId), ct)
                ?? throw new EngineException($"Run {p.GetValue(runId)} does not exist.");
            var artifacts = run.Stages.SelectMany(s => s.Artifacts).ToList();
            if (p.GetValue(JsonOption)) CliOutput.Json(artifacts);
            else foreach (var a in artifacts) Console.WriteLine($"{a.Path}  {a.Bytes:N0} B  sha256 {a.Sha256}");
            return CliOutput.Ok;
        });

        var name = new Argument<string>("artifact") { Description = "Artifact path, or a file name unique within the run (e.g. manifest.json)" };
        var output = new Option<string?>("--out", "-o") { Description = "Destination file or folder (default: the file name in the current folder)" };
        var get = new Command("get", "Download an artifact, verifying its sha256") { runId, name, output };
        get.SetAction(async (p, ct) =>
        {
            using var host = await StartedHostAsync(ct);
            var run = await host.Services.GetRequiredService<RunQueries>().GetAsync(p.GetValue(runId), ct)
                ?? throw new EngineException($"Run {p.GetValue(runId)} does not exist.");
            var wanted = p.GetValue(name)!;
            var matches = run.Stages.SelectMany(s => s.Artifacts)
                .Where(a => a.Path == wanted || a.Path.EndsWith("/" + wanted, StringComparison.Ordinal)).DistinctBy(a => a.Path).ToList();
            if (matches.Count != 1)
            {
                return CliOutput.Error(matches.Count == 0
                    ? $"Run {run.Id} has no artifact '{wanted}'. See 'pipeline artifacts list {run.Id}'."
                    : $"'{wanted}' matches {matches.Count} artifacts; give the full path:\n  " + string.Join("\n  ", matches.Select(m => m.Path)));
            }
            var artifact = matches[0];
            var target = p.GetValue(output) ?? Path.GetFileName(artifact.Path);
            if (Directory.Exists(target)) target = Path.Combine(target, Path.GetFileName(artifact.Path));
            await RunResults.DownloadAsync(host.Services.GetRequiredService<IArtifactStore>(), artifact.Path, artifact.Sha256, target, ct);
            Console.WriteLine($"{target}  {artifact.Bytes:N0} B  sha256 {artifact.Sha256} (verified)");
            return CliOutput.Ok;
        });
        return new Command("artifacts", "List and download artifacts") { list, get };
    }

    private static Command WorkerCommand()
    {
        var queues = new Option<string>("--queues") { Description = "Comma-separated queues to take jobs from (gpu, cpu, default)", DefaultValueFactory = _ => "gpu,cpu,default" };
        var workers = new Option<int>("--workers") { Description = "Concurrent jobs in this process (one per GPU)", DefaultValueFactory = _ => 1 };
        var cmd = new Command("worker", "Run a worker until stopped (Ctrl+C / SIGTERM)") { queues, workers };
        cmd.SetAction(async (p, ct) =>
        {
            var overrides = new Dictionary<string, string?> { ["Pipeline:WorkerCount"] = p.GetValue(workers).ToString(System.Globalization.CultureInfo.InvariantCulture) };
            var list = p.GetValue(queues)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            for (var i = 0; i < list.Length; i++) overrides[$"Pipeline:Queues:{i}"] = list[i];
            using var host = PipelineHost.Build(worker: true, overrides);
            await host.RunAsync(ct);
            return CliOutput.Ok;
        });
        return cmd;
    }

    private static async Task<int> WithEngineAsync(Func<StageEngine, CancellationToken, Task> action, string done, CancellationToken ct)
    {
        using var host = await StartedHostAsync(ct);
        await action(host.Services.GetRequiredService<StageEngine>(), ct);
        Console.WriteLine(done);
        await host.StopAsync(CancellationToken.None);
        return CliOutput.Ok;
    }

    internal static async Task<IHost> StartedHostAsync(CancellationToken ct)
    {
        var host = PipelineHost.Build(worker: false);
        await host.StartAsync(ct);
        return host;
    }

    /// <summary>An embedded `run --wait` of a RunSpec with a search runs its <c>parallel</c> trials at once, unless the configuration allows more.</summary>
    private static async Task<int?> SearchSlotsAsync(string preset, string[]? overrides, CancellationToken ct)
    {
        using var probe = PipelineHost.Build(worker: false);
        var parallel = await probe.Services.GetRequiredService<RunLauncher>().SearchParallelismAsync(preset, overrides, ct);
        var configured = probe.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<PipelineOptions>>().Value.WorkerCount;
        if (parallel <= configured) return null;
        Console.WriteLine($"Running {parallel} stages at once in this process: the search's parallel trials (--workers sets another number).");
        return parallel;
    }

    internal static PipelineMode ModeOf()
    {
        using var probe = PipelineHost.Build(worker: false);
        return probe.Services.GetRequiredService<PipelineMode>();
    }
}
