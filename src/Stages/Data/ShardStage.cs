using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Mediator;
using Microsoft.Extensions.Logging;
using Pipeline.Stages.Execution;
using SkiaSharp;

namespace Pipeline.Stages.Data;

/// <summary>Turns an image dataset into WebDataset tar shards plus <c>manifest.json</c> (see <see cref="ShardManifest"/>).</summary>
[Stage("shard", StageQueues.Cpu, 1)]
public sealed record ShardStage(ShardParams Params, StageContext Context) : IStageRequest<ShardParams>;

/// <summary>
/// Loads and encodes samples on all cores in fixed-size chunks, then writes each chunk in index order, so the shards
/// are byte-identical for the same input and seed whatever the thread timing. Train is shuffled (seeded) so shards mix
/// classes; val keeps the source order.
/// On failure: the manifest is written last, so no failed run ever has one, and the shards already committed are
/// deleted before the exception propagates, so a failed attempt leaves no outputs at all.
/// </summary>
public sealed class ShardHandler : IRequestHandler<ShardStage, StageResult>
{
    // Samples loaded and encoded per parallel batch: bounds memory (ImageNet-size images) while keeping cores busy.
    private const int ChunkSize = 256;

    public async ValueTask<StageResult> Handle(ShardStage request, CancellationToken cancellationToken)
    {
        var (p, context) = (request.Params, request.Context);
        try
        {
            var manifest = await RunAsync(p, context, cancellationToken);
            var summary = new JsonObject
            {
                ["classes"] = manifest.Classes.Count,
                ["train"] = manifest.Train.Count,
                ["val"] = manifest.Val.Count,
                ["shards"] = manifest.Train.Shards.Count + manifest.Val.Shards.Count,
                ["skipped"] = manifest.Skipped.Total,
            };
            return new StageResult(context.Outputs, summary);
        }
        catch (Exception e)
        {
            await DeleteOutputsAsync(context, e);
            throw;
        }
    }

    private static async Task<ShardManifest> RunAsync(ShardParams p, StageContext context, CancellationToken ct)
    {
        var log = context.Logger;
        var (source, info) = OpenSource(p);
        var counts = new[] { source.Count(ShardSplitName.Train), source.Count(ShardSplitName.Val) };
        if (counts[0] == 0)
            throw new StageInputException($"The dataset ({info.Description}) has no train images. {(p.Source.Kind == ShardSourceKind.FashionMnist ? "Raise or remove source.limit_train." : "Add images or check source.path.")}");
        log.LogInformation("Sharding {Source}: {Classes} classes, {Train} train and {Val} val items, short side {ShortSide}, {Format}",
            info.Description, source.Classes.Count, counts[0], counts[1], p.EffectiveShortSide?.ToString() ?? "kept", p.ImageFormat);

        var progress = new ProgressTracker(context.Progress, counts[0] + counts[1]);
        var skips = new SkipLog(p.MaxListedSkips);
        var clock = Stopwatch.StartNew();
        var train = await WriteSplitAsync(source, ShardSplitName.Train, p, context, progress, skips, ct);
        var val = await WriteSplitAsync(source, ShardSplitName.Val, p, context, progress, skips, ct);

        var images = train.Count + val.Count;
        var rate = images / Math.Max(clock.Elapsed.TotalSeconds, 1e-9);
        context.Progress.Metric("images_per_second", rate);
        log.LogInformation("Sharded {Images} images into {Shards} shards in {Seconds:F1} s ({ImagesPerSecond:F0} images/s); skipped {Skipped}",
            images, train.Shards.Count + val.Shards.Count, clock.Elapsed.TotalSeconds, rate, skips.Total);

        var manifest = new ShardManifest(
            ShardManifest.CurrentFormatVersion,
            source.Classes,
            new ShardImageSpec(p.ImageFormat, source.Channels, p.EffectiveShortSide, p.ImageFormat == ShardImageFormat.Jpg ? p.EffectiveJpegQuality : null),
            info,
            Preprocessing(p, source.Channels),
            p.Seed,
            train,
            val,
            new ShardSkipReport(skips.Total, skips.Listed));
        using var json = new MemoryStream(manifest.ToJsonBytes());
        await context.WriteOutputAsync(ShardManifest.FileName, json, ct);
        context.Progress.Report(1, "done");
        return manifest;
    }

    private static async Task<ShardSplitInfo> WriteSplitAsync(
        IDatasetSource source, ShardSplitName split, ShardParams p, StageContext context,
        ProgressTracker progress, SkipLog skips, CancellationToken ct)
    {
        var name = split == ShardSplitName.Train ? "train" : "val";
        var n = source.Count(split);
        var order = split == ShardSplitName.Train
            ? DeterministicRandom.Permutation(n, DeterministicRandom.Mix((ulong)p.Seed, 0x7124A1))
            : Enumerable.Range(0, n).ToArray();
        var perClass = new int[source.Classes.Count];
        var sourcePerClass = new int[source.Classes.Count];
        var firstSkip = new string?[source.Classes.Count];
        var shards = new List<ShardFileInfo>();
        var extension = p.ImageFormat == ShardImageFormat.Jpg ? "jpg" : "png";

        async Task Commit(string fileName, string localPath, int samples, CancellationToken token)
        {
            await using var file = new FileStream(localPath, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, useAsync: true);
            var artifact = await context.WriteOutputAsync(fileName, file, token);
            shards.Add(new ShardFileInfo(fileName, artifact.Sha256, artifact.Bytes, samples));
            context.Logger.LogDebug("Committed shard {Shard}: {Samples} samples, {Bytes} bytes", fileName, samples, artifact.Bytes);
        }

        await using (var writer = new ShardWriter(name, context.ScratchFolder, p.ShardMaxBytes, p.ShardMaxSamples, Commit))
        {
            // Encoding the next chunk overlaps writing and committing this one.
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            Task<EncodedSample[]>? next = n > 0 ? EncodeChunkAsync(source, split, order, 0, p, stop.Token) : null;
            try
            {
                for (var start = 0; start < n; start += ChunkSize)
                {
                    var current = next!;
                    next = null;
                    var encoded = await current;
                    next = start + ChunkSize < n ? EncodeChunkAsync(source, split, order, start + ChunkSize, p, stop.Token) : null;
                    for (var i = 0; i < encoded.Length; i++)
                    {
                        var index = order[start + i];
                        var cls = source.ClassOf(split, index);
                        sourcePerClass[cls]++;
                        if (encoded[i].SkipReason is { } reason)
                        {
                            var item = source.Describe(split, index);
                            skips.Add(name, item, reason);
                            firstSkip[cls] ??= $"'{item}': {reason}";
                            continue;
                        }
                        await writer.AddAsync($"{name}_{index:D8}", extension, encoded[i].Bytes!, cls, ct);
                        perClass[cls]++;
                    }
                    progress.Advance(encoded.Length, $"{name} {start + encoded.Length}/{n} images, {writer.ShardsWritten} shards");
                }
            }
            finally
            {
                if (next is not null)
                {
                    await stop.CancelAsync();
                    // Abandoned because writing failed; that failure is the one to report.
                    try
                    {
                        await next;
                    }
                    catch (Exception)
                    {
                    }
                }
            }
            await writer.CompleteAsync(ct);
        }

        // A class that had files but none usable would silently vanish from training: fail instead.
        var empty = Enumerable.Range(0, perClass.Length).Where(c => sourcePerClass[c] > 0 && perClass[c] == 0).ToList();
        if (empty.Count > 0)
        {
            var c = empty[0];
            throw new StageInputException($"Class '{source.Classes[c]}' has no usable {name} images: all {sourcePerClass[c]} were skipped (first: {firstSkip[c]}). Replace the broken files or remove the class folder.");
        }
        var count = perClass.Sum();
        if (split == ShardSplitName.Train && count == 0)
            throw new StageInputException("No train image could be decoded; every file was skipped. Check the files (see the skip reasons in the log).");
        return new ShardSplitInfo(count, perClass, shards);
    }

    private static Task<EncodedSample[]> EncodeChunkAsync(
        IDatasetSource source, ShardSplitName split, int[] order, int start, ShardParams p, CancellationToken ct) => Task.Run(() =>
    {
        var encoded = new EncodedSample[Math.Min(ChunkSize, order.Length - start)];
        var parallel = new ParallelOptions
        {
            MaxDegreeOfParallelism = p.Threads is > 0 ? p.Threads.Value : Environment.ProcessorCount,
            CancellationToken = ct,
        };
        // Each result lands at its own index, so the written order never depends on which thread finished first.
        Parallel.For(0, encoded.Length, parallel, i => encoded[i] = Encode(source, split, order[start + i], p));
        return encoded;
    }, ct);

    private static EncodedSample Encode(IDatasetSource source, ShardSplitName split, int index, ShardParams p)
    {
        var loaded = source.Load(split, index);
        if (loaded.Bitmap is not { } bitmap) return new(null, loaded.SkipReason ?? "could not be loaded");
        SKBitmap? resized = null;
        try
        {
            resized = p.EffectiveShortSide is { } side ? ImageCodec.ResizeShortSide(bitmap, side) : bitmap;
            return new(ImageCodec.Encode(resized, p.ImageFormat, p.EffectiveJpegQuality), null);
        }
        finally
        {
            if (!ReferenceEquals(resized, bitmap)) resized?.Dispose();
            bitmap.Dispose();
        }
    }

    private static (IDatasetSource, ShardSourceInfo) OpenSource(ShardParams p)
    {
        var s = p.Source;
        var parameters = JsonSerializer.SerializeToNode(s.Resolved(), PipelineJson.Options)!.AsObject();
        var kind = ShardSourceParams.PipelineKindName(s.Kind);
        switch (s.Kind)
        {
            case ShardSourceKind.FashionMnist:
                return (new FashionMnistDataset(s.EffectivePath, s.LimitTrain, s.LimitVal),
                    new ShardSourceInfo(kind, s.EffectivePath, $"Fashion-MNIST at {s.EffectivePath}", parameters));
            case ShardSourceKind.Folder:
                var folder = new FolderDataset(s.EffectivePath, s.EffectiveValFraction, p.Seed, p.EffectiveShortSide);
                return (folder, new ShardSourceInfo(kind, Path.GetFullPath(s.EffectivePath), $"image folder {Path.GetFullPath(s.EffectivePath)} ({folder.SplitLayout})", parameters));
            default:
                var synthetic = new SyntheticOccludedObjects(s.EffectiveNumClasses, s.EffectiveImageSize, s.EffectiveTrainCount,
                    s.EffectiveValCount, s.EffectiveOcclusion, s.EffectiveClutter, p.Seed, s.EffectiveMinContrast);
                return (synthetic, new ShardSourceInfo(kind, null,
                    $"synthetic occluded objects: {s.EffectiveNumClasses} classes, {s.EffectiveImageSize} px, occlusion {s.EffectiveOcclusion}, clutter {s.EffectiveClutter}, min contrast {s.EffectiveMinContrast}", parameters));
        }
    }

    private static string Preprocessing(ShardParams p, int channels)
    {
        var colour = channels == 1 ? "grey (1 channel)" : "RGB (3 channels, alpha dropped)";
        var resize = p.EffectiveShortSide is { } side
            ? $"resize so the short side is {side} px, aspect kept (SkiaSharp; JPEGs decoded at 1/2, 1/4 or 1/8 scale when that stays above the target, halved by 2x2 averaging while over twice the target, then Mitchell cubic)"
            : "no resize";
        var encode = p.ImageFormat == ShardImageFormat.Jpg ? $"JPEG quality {p.EffectiveJpegQuality}" : "PNG (lossless)";
        return $"decode; {resize}; {colour}; encode {encode}; train order shuffled with the seed, val in source order";
    }

    private static async Task DeleteOutputsAsync(StageContext context, Exception cause)
    {
        foreach (var output in context.Outputs)
        {
            try
            {
                await context.Store.DeleteAsync(output.Path, CancellationToken.None);
            }
            catch (Exception e)
            {
                context.Logger.LogWarning(e, "Could not delete {Path} after the shard stage failed", output.Path);
            }
        }
        if (context.Outputs.Count > 0)
            context.Logger.LogInformation("Deleted {Count} shards written before the failure: {Error}", context.Outputs.Count, cause.Message);
    }

    private readonly record struct EncodedSample(byte[]? Bytes, string? SkipReason);

    private sealed class SkipLog(int maxListed)
    {
        private readonly List<SkippedItem> _listed = [];

        public int Total { get; private set; }
        public IReadOnlyList<SkippedItem> Listed => _listed;

        public void Add(string split, string item, string reason)
        {
            Total++;
            if (_listed.Count < maxListed) _listed.Add(new SkippedItem(split, item, reason));
        }

    }

    private sealed class ProgressTracker(IStageProgress progress, long total)
    {
        private long _done;

        public void Advance(int count, string message)
        {
            _done += count;
            // Leave the last percent for the manifest, so 1.0 means committed.
            progress.Report(total == 0 ? 0.99 : 0.99 * _done / total, message);
        }
    }
}
