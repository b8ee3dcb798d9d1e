using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using Mediator;
using Microsoft.Extensions.Logging;
using Pipeline.Stages.Data;
using Pipeline.Stages.Execution;
using Pipeline.Stages.Models;
using Pipeline.Stages.Models.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Pipeline.Stages.Training;

/// <summary>Trains one model (baseline, control or ConvRNN) on the shards of the stage it depends on.</summary>
[Stage("train", StageQueues.Gpu, 2)]
public sealed record TrainStage(TrainParams Params, StageContext Context) : IStageRequest<TrainParams>;

/// <summary>
/// The training loop: resume from the newest intact checkpoint, train with background-decoded batches, evaluate at
/// each epoch end, checkpoint on a timer, at epoch ends and when stopped, then write the model, metrics and curves.
/// Everything random is a function of (seed, epoch, position), so a resumed run sees the batches an uninterrupted
/// one would, and the learning rate is a function of the step (<see cref="ScheduleParams.LearningRateAt"/>).
/// </summary>
public sealed class TrainHandler : IRequestHandler<TrainStage, StageResult>
{
    /// <summary>The validation metrics a pruning search may judge train trials on at a rung.</summary>
    public static readonly IReadOnlyList<string> RungMetrics = ["top1", "top5", "eval_loss"];

    public const string CheckpointFolder = "checkpoints/";

    public async ValueTask<StageResult> Handle(TrainStage request, CancellationToken cancellationToken)
    {
        var (p, context) = (request.Params, request.Context);
        try
        {
            return await new TrainingRun(p, context).RunAsync(cancellationToken);
        }
        catch (Exception e) when (IsOutOfMemory(e))
        {
            throw OutOfMemory(e, p.BatchSize);
        }
    }

    /// <summary>The stage error for an allocation failure: what failed, and the batch size to try instead.</summary>
    internal static StageInputException OutOfMemory(Exception e, int batchSize) => new(
        $"Out of memory while training with batch_size {batchSize}: {FirstLine(e.Message)} Lower batch_size (e.g. {Math.Max(1, batchSize / 2)}) or image_size, or run on a worker with more memory.");

    /// <summary>.NET's own, libtorch's CPU allocator ("can't allocate memory") and CUDA's ("CUDA out of memory").</summary>
    internal static bool IsOutOfMemory(Exception e) =>
        e is OutOfMemoryException ||
        (e is ExternalException && (e.Message.Contains("out of memory", StringComparison.OrdinalIgnoreCase) || e.Message.Contains("can't allocate memory", StringComparison.OrdinalIgnoreCase)));

    private static string FirstLine(string message)
    {
        var line = message.Split('\n', 2)[0].Trim();
        return line.EndsWith('.') ? line : line + ".";
    }
}

/// <summary>One attempt of a train stage: the state it carries between steps.</summary>
internal sealed class TrainingRun(TrainParams p, StageContext context)
{
    private readonly ILogger _log = context.Logger;
    private TrainingHistory _history = TrainingHistory.Empty();

    public async Task<StageResult> RunAsync(CancellationToken ct)
    {
        var wall = Stopwatch.StartNew();
        var manifestInfo = context.RequireInput(ShardManifest.FileName);
        ShardManifest manifest;
        try
        {
            manifest = await ShardManifest.ReadAsync(context.Store, manifestInfo.Path, manifestInfo.Sha256, ct);
        }
        catch (Exception e) when (BatchLoader.IsBadShard(e))
        {
            throw new StageInputException($"The shard manifest '{manifestInfo.Path}' could not be read: {e.Message} Re-run the shard stage.", e);
        }
        var reader = new ShardReader(context.Store, manifest, Path.Combine(context.ScratchFolder, "shards"));
        var imageSize = p.ImageSize ?? manifest.Image.ShortSide ?? await UniformSourceSizeAsync(manifest, reader, ct);
        var device = ComputeDevice.Resolve(p.Device);

        var spec = ModelFactory.Resolve(p.Model.Resolve(imageSize, manifest.Classes.Count, manifest.Image.Channels));
        torch.manual_seed(p.Seed);
        using var model = ModelFactory.Create(spec);
        model.Module.to(device);
        model.Module.train();
        var specJson = JsonSerializer.SerializeToNode(spec, PipelineJson.Options)!;
        using var optimizer = new TrainingOptimizer(p.Optimizer, model.Module.parameters());

        var stepsPerEpoch = BatchLoader.BatchesPerEpoch(manifest, ShardSplitName.Train, p.BatchSize, dropLast: true);
        if (stepsPerEpoch == 0)
            throw new StageInputException($"The train split has {manifest.Train.Count} images, fewer than one batch of {p.BatchSize}; lower batch_size or shard more images.");
        var totalSteps = p.Steps ?? (long)(p.Epochs ?? 1) * stepsPerEpoch;
        var epochs = (int)((totalSteps + stepsPerEpoch - 1) / stepsPerEpoch);
        var normalization = p.Mean is { } mean && p.Std is { } std
            ? new ImageNormalization(mean, std)
            : ImageNormalization.Default(manifest.Image.Channels);
        if (normalization.Mean.Count != manifest.Image.Channels)
            throw new StageInputException($"mean/std have {normalization.Mean.Count} values but the shards' images have {manifest.Image.Channels} channel(s); give one per channel.");

        // Keyed by content key (StateFolder): a new run of the same stage after a crash resumes here too.
        var checkpoints = new CheckpointManager(context.Store, context.StateFolder + TrainHandler.CheckpointFolder,
            Path.Combine(context.ScratchFolder, "checkpoints"), p.Checkpoint.Keep, _log);
        var position = new TrainingPosition(0, 0, 0);
        var resumedFrom = (long?)null;
        if (await checkpoints.LoadNewestAsync(model.Module, optimizer, ct) is { } resumed)
        {
            position = resumed.Position;
            resumedFrom = position.Step;
            _history = resumed.State["history"]?.Deserialize<TrainingHistory>(PipelineJson.Options) ?? TrainingHistory.Empty();
            _log.LogInformation("Resuming {Model} from the checkpoint at step {Step} (epoch {Epoch}, batch {Batch})", spec.Name, position.Step, position.Epoch + 1, position.BatchInEpoch);
        }
        _log.LogInformation("Training {Model} ({Parameters:N0} parameters, T {Steps}) on {Train} images of {Classes} classes at {Size} px: {TotalSteps} steps, {Epochs} epoch(s), batch {Batch}, {Device}",
            spec.Name, ModelStats.Parameters(model.Module), model.DefaultSteps, manifest.Train.Count, manifest.Classes.Count, imageSize, totalSteps, epochs, p.BatchSize, device);

        var loaderOptions = new BatchLoaderOptions
        {
            Split = ShardSplitName.Train,
            BatchSize = p.BatchSize,
            ImageSize = imageSize,
            Channels = manifest.Image.Channels,
            Normalization = normalization,
            Augmentation = p.Augmentation,
            Train = true,
            Seed = p.Seed,
            Shuffle = true,
            DropLast = true,
            DecodeThreads = p.DecodeThreads,
            PrefetchBatches = p.PrefetchBatches,
        };
        var loop = new StepLoop(p, model, optimizer, device, totalSteps, stepsPerEpoch, context.Progress, _history);
        var lastCheckpoint = Stopwatch.StartNew();
        var lastEval = (EvalPoint?)_history.Eval.LastOrDefault();

        async Task SaveCheckpointAsync(CancellationToken token)
        {
            var state = new JsonObject { ["history"] = JsonSerializer.SerializeToNode(_history, PipelineJson.Options) };
            await checkpoints.SaveAsync(model.Module, optimizer, specJson, position, state, token);
            lastCheckpoint.Restart();
        }

        try
        {
            for (var epoch = position.Epoch; epoch < epochs && position.Step < totalSteps; epoch++)
            {
                await using (var loader = new BatchLoader(reader, loaderOptions with { Epoch = epoch, StartBatch = epoch == position.Epoch ? position.BatchInEpoch : 0 }))
                {
                    while (position.Step < totalSteps && await loader.NextForStageAsync(ct) is { } batch)
                    {
                        loop.Train(batch, position.Step, epoch, loader.WaitTime);
                        position = new TrainingPosition(position.Step + 1, epoch, batch.Index + 1);
                        if (context.Pruning is { } pruning && pruning.Rungs.Contains(position.Step))
                            await JudgeAtRungAsync(pruning, model, reader, loaderOptions, position, epoch, SaveCheckpointAsync, ct);
                        if (!loop.InNonFiniteStreak &&
                            (lastCheckpoint.Elapsed >= p.Checkpoint.Interval || (p.Checkpoint.EverySteps is { } every && position.Step % every == 0)))
                            await SaveCheckpointAsync(ct);
                        ct.ThrowIfCancellationRequested();
                    }
                }
                if (position.BatchInEpoch >= stepsPerEpoch) position = new TrainingPosition(position.Step, epoch + 1, 0);
                lastEval = await EvaluateAsync(model, reader, loaderOptions, position, epoch, ct);
                _history.Eval.Add(lastEval);
                await SaveCheckpointAsync(ct);
            }
        }
        catch (OperationCanceledException)
        {
            // Cancelled, or the worker is stopping (SIGTERM, eviction): keep the work done so far for the next attempt.
            if (position.Step > (resumedFrom ?? 0) && !loop.InNonFiniteStreak)
            {
                _log.LogInformation("Stopping at step {Step}: writing a checkpoint before handing the stage back", position.Step);
                await SaveCheckpointAsync(CancellationToken.None);
            }
            throw;
        }
        catch (NonFiniteLossException e)
        {
            var saved = await checkpoints.ListAsync(CancellationToken.None);
            var kept = saved.Count == 0 ? null : saved[^1];
            throw new StageInputException($"{e.Message} {(kept is null ? "No checkpoint was written before it." : $"The last good checkpoint (step {kept.Step}) is kept.")} Lower optimizer.learning_rate, set clip.norm or clip.value, or check the data.");
        }

        lastEval ??= await EvaluateAsync(model, reader, loaderOptions, position, position.Epoch, ct);
        var result = await WriteOutputsAsync(model, spec, specJson, manifest, normalization, loop, lastEval, totalSteps, resumedFrom, device, wall.Elapsed, ct);
        await checkpoints.PruneToAsync(p.Checkpoint.KeepFinal, ct);
        return result;
    }

    /// <summary>
    /// A search trial at a successive-halving rung: evaluate, report the search's metric, and either go on or keep a
    /// checkpoint (a later run of the same trial resumes from it) and stop as pruned.
    /// </summary>
    private async Task JudgeAtRungAsync(ITrialPruning pruning, IVisionModel model, ShardReader reader, BatchLoaderOptions options, TrainingPosition position, int epoch,
        Func<CancellationToken, Task> saveCheckpoint, CancellationToken ct)
    {
        var point = await EvaluateAsync(model, reader, options, position, epoch, ct);
        var value = pruning.Metric switch
        {
            "top1" => point.Top1,
            "top5" => point.Top5,
            "eval_loss" => point.Loss,
            _ => throw new StageInputException($"A pruning search judges train trials on {string.Join(", ", TrainHandler.RungMetrics)}; its objective.metric is '{pruning.Metric}'."),
        };
        if (await pruning.ShouldContinueAsync(position.Step, value, ct)) return;
        await saveCheckpoint(ct);
        _log.LogInformation("Pruned at step {Step}: {Metric} {Value:F4} is below the top of its rung", position.Step, pruning.Metric, value);
        throw new TrialPrunedException(position.Step, value, new JsonObject
        {
            ["model"] = model.Spec.Name,
            ["parameters"] = ModelStats.Parameters(model.Module),
            [pruning.Metric] = Math.Round(value, 4),
        });
    }

    /// <summary>Synthetic and Fashion-MNIST images all have one size: the first image's short side is the size.</summary>
    private static async Task<int> UniformSourceSizeAsync(ShardManifest manifest, ShardReader reader, CancellationToken ct)
    {
        if (manifest.Source.Kind == "folder" || manifest.Train.Shards.Count == 0)
            throw new StageInputException("image_size is not set and the shards kept their source sizes (no short_side); set image_size (e.g. 224).");
        try
        {
            await foreach (var sample in reader.ReadShardAsync(manifest.Train.Shards[0], ct))
            {
                ImageCodec.DecodeChw(sample.Image, manifest.Image.Channels, out var height, out var width);
                return Math.Min(height, width);
            }
        }
        catch (Exception e) when (BatchLoader.IsBadShard(e))
        {
            throw new StageInputException($"{e.Message} Re-run the shard stage (with --no-cache) to rebuild the shards.", e);
        }
        throw new StageInputException($"The first train shard '{manifest.ShardPath(manifest.Train.Shards[0])}' is empty; re-run the shard stage.");
    }

    /// <summary>Top-1, top-5 and loss of the readout on the validation split (or its first eval_max_samples images).</summary>
    private async Task<EvalPoint> EvaluateAsync(IVisionModel model, ShardReader reader, BatchLoaderOptions train, TrainingPosition position, int epoch, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        var options = train with { Split = ShardSplitName.Val, Train = false, Shuffle = false, DropLast = false, Epoch = 0, StartBatch = 0, MaxSamples = p.EvalMaxSamples };
        double loss = 0, top1 = 0, top5 = 0, readoutStep = 0;
        long n = 0;
        model.Module.eval();
        try
        {
            await using var loader = new BatchLoader(reader, options);
            while (await loader.NextForStageAsync(ct) is { } batch)
            {
                using var scope = NewDisposeScope();
                using var noGrad = no_grad();
                var device = model.Module.parameters().First().device;
                var x = tensor(batch.Images, [batch.Count, options.Channels, options.ImageSize, options.ImageSize]).to(device);
                var y = tensor(batch.Labels).to(device);
                var result = model.Unroll(x);
                loss += nn.functional.cross_entropy(result.Readout, y, reduction: nn.Reduction.Sum).ToDouble();
                var (hit1, hit5) = Accuracy.Hits(result.Readout, y);
                top1 += hit1;
                top5 += hit5;
                readoutStep += result.ReadoutStep.to(float64).sum().ToDouble();
                n += batch.Count;
                NativeHeap.Trim();
            }
        }
        finally
        {
            model.Module.train();
        }
        if (n == 0) throw new StageInputException("The validation split has no images; shard with a validation split (e.g. source.val_count or limit_val > 0).");
        var point = new EvalPoint(position.Step, epoch, loss / n, top1 / n, top5 / n, model.DefaultSteps > 1 ? (int)Math.Round(readoutStep / n) : null)
        {
            ImagesPerSecond = n / Math.Max(clock.Elapsed.TotalSeconds, 1e-9),
        };
        context.Progress.Metric("eval_loss", point.Loss, point.Step);
        context.Progress.Metric("eval_top1", point.Top1, point.Step);
        if (Accuracy.ReportsTopFive(model.Spec.Classes)) context.Progress.Metric("eval_top5", point.Top5, point.Step);
        if (Accuracy.ReportsTopFive(model.Spec.Classes))
            _log.LogInformation("Epoch {Epoch} at step {Step}: eval loss {Loss:F4}, top-1 {Top1:P2}, top-5 {Top5:P2} on {Images} images ({ImagesPerSecond:F0} images/s)",
                epoch + 1, point.Step, point.Loss, point.Top1, point.Top5, n, point.ImagesPerSecond);
        else
            _log.LogInformation("Epoch {Epoch} at step {Step}: eval loss {Loss:F4}, top-1 {Top1:P2} on {Images} images ({ImagesPerSecond:F0} images/s)",
                epoch + 1, point.Step, point.Loss, point.Top1, n, point.ImagesPerSecond);
        return point;
    }

    private async Task<StageResult> WriteOutputsAsync(IVisionModel model, ModelSpec spec, JsonNode specJson, ShardManifest manifest, ImageNormalization normalization, StepLoop loop,
        EvalPoint eval, long totalSteps, long? resumedFrom, Device device, TimeSpan wall, CancellationToken ct)
    {
        var modelPath = Path.Combine(context.ScratchFolder, "model.safetensors");
        await ModelCheckpoint.SaveAsync(model.Module, modelPath, specJson, ct);
        foreach (var file in new[] { modelPath, ModelCheckpoint.SidecarPath(modelPath) })
        {
            await using var stream = File.OpenRead(file);
            await context.WriteOutputAsync(Path.GetFileName(file), stream, ct);
        }

        var metrics = new JsonObject
        {
            ["model"] = spec.Name,
            ["parameters"] = ModelStats.Parameters(model.Module),
            ["multiply_adds"] = ModelStats.MultiplyAdds(model, model.DefaultSteps),
            ["time_steps"] = model.DefaultSteps,
            ["minimal_steps"] = model.MinimalSteps,
            ["top1"] = eval.Top1,
            ["top5"] = eval.Top5,
            ["eval_loss"] = eval.Loss,
            ["readout_step"] = eval.ReadoutStep,
            ["train_loss"] = _history.Train.LastOrDefault()?.Loss,
            ["train_images_per_second"] = loop.ImagesPerSecond,
            ["eval_images_per_second"] = eval.ImagesPerSecond,
            ["input_wait_fraction"] = loop.InputWaitFraction,
            ["wall_seconds"] = wall.TotalSeconds,
            ["steps"] = totalSteps,
            ["steps_this_attempt"] = loop.Steps,
            ["resumed_from_step"] = resumedFrom,
            ["epochs"] = _history.Eval.Count == 0 ? 0 : _history.Eval[^1].Epoch + 1,
            ["batch_size"] = p.BatchSize,
            ["image_size"] = spec.InputSize,
            ["classes"] = manifest.Classes.Count,
            ["train_images"] = manifest.Train.Count,
            ["val_images_evaluated"] = p.EvalMaxSamples is { } max ? Math.Min(max, manifest.Val.Count) : manifest.Val.Count,
            ["device"] = device.type.ToString().ToLowerInvariant(),
            ["threads"] = torch.get_num_threads(),
            // The input normalisation the model was trained with: every stage that evaluates it must use the same.
            ["normalization"] = JsonSerializer.SerializeToNode(normalization, PipelineJson.Options),
        };
        if (!Accuracy.ReportsTopFive(manifest.Classes.Count)) metrics.Remove("top5");
        await context.WriteJsonAsync("metrics.json", metrics, ct);
        await context.WriteJsonAsync("history.json", _history, ct);
        var title = $"{spec.Name} on {manifest.Source.Kind}";
        var curves = TrainingCurves.Build(_history, title, manifest.Classes.Count);
        await context.WriteOutputAsync("curves.png", new MemoryStream(curves.Png()), ct);
        await context.WriteOutputAsync("curves.svg", new MemoryStream(System.Text.Encoding.UTF8.GetBytes(curves.Svg())), ct);

        var summary = new JsonObject
        {
            ["model"] = spec.Name,
            ["parameters"] = metrics["parameters"]!.DeepClone(),
            ["top1"] = Math.Round(eval.Top1, 4),
            ["top5"] = Accuracy.ReportsTopFive(manifest.Classes.Count) ? Math.Round(eval.Top5, 4) : null,
            ["steps"] = totalSteps,
            ["wall_seconds"] = Math.Round(wall.TotalSeconds, 1),
        };
        if (summary["top5"] is null) summary.Remove("top5");
        if (resumedFrom is not null) summary["resumed_from_step"] = resumedFrom;
        return new StageResult(context.Outputs, summary);
    }
}
