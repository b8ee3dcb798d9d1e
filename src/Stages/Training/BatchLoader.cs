using System.Diagnostics;
using System.Threading.Channels;
using Pipeline.Stages.Data;

namespace Pipeline.Stages.Training;

/// <summary>
/// Feeds one epoch of a split to the trainer, decoding and augmenting ahead of it: a background producer reads one
/// shard at a time, renders each batch's samples on <see cref="BatchLoaderOptions.DecodeThreads"/> threads straight
/// into the batch's float array, and queues finished batches in a bounded channel of
/// <see cref="BatchLoaderOptions.PrefetchBatches"/> — memory is one shard's encoded bytes plus the queue.
/// The output is a pure function of (manifest, options): the order comes from <see cref="EpochOrder"/>, each sample's
/// augmentation from a seed of (seed, epoch, position), so thread count, timing and resuming change nothing.
/// One consumer: <see cref="NextAsync"/> must not be called concurrently.
/// </summary>
public sealed class BatchLoader : IAsyncDisposable
{
    private readonly ShardReader _reader;
    private readonly BatchLoaderOptions _options;
    private readonly SampleTransform _transform;
    private readonly Channel<TrainingBatch> _queue;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _producer;
    private long _waitTicks;
    private bool _disposed;

    /// <summary>Checks the options and starts the background producer at once.</summary>
    /// <exception cref="ArgumentException">An option is out of range; the message names it.</exception>
    public BatchLoader(ShardReader reader, BatchLoaderOptions options)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentNullException.ThrowIfNull(options);
        options.Check();
        (_reader, _options) = (reader, options);
        _transform = new SampleTransform(options.ImageSize, options.Channels, options.Normalization, options.Augmentation, options.Train);
        BatchCount = BatchesPerEpoch(reader.Manifest, options.Split, options.BatchSize, options.DropLast, options.MaxSamples);
        _queue = Channel.CreateBounded<TrainingBatch>(new BoundedChannelOptions(options.PrefetchBatches)
        {
            SingleReader = true,
            SingleWriter = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        var token = _stop.Token;
        _producer = Task.Run(() => ProduceAsync(token), CancellationToken.None);
    }

    /// <summary>Batches in the whole epoch (from batch 0, whatever <see cref="BatchLoaderOptions.StartBatch"/>).</summary>
    public int BatchCount { get; }

    /// <summary>Total time <see cref="NextAsync"/> spent waiting for the producer: the trainer's input-bound time.</summary>
    public TimeSpan WaitTime => TimeSpan.FromTicks(Interlocked.Read(ref _waitTicks));

    /// <summary>Batches per epoch: ceil(n / batchSize), or floor when <paramref name="dropLast"/>; n capped at maxSamples.</summary>
    public static int BatchesPerEpoch(ShardManifest manifest, ShardSplitName split, int batchSize, bool dropLast, int? maxSamples = null)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        var n = EpochOrder.SampleCount(manifest, split, maxSamples);
        return dropLast ? n / batchSize : (n + batchSize - 1) / batchSize;
    }

    /// <summary>
    /// The next batch, or null after the epoch's last one. A failure of the producer (unreadable shard, bad label,
    /// undecodable image) is rethrown here, after the batches it produced before failing.
    /// </summary>
    public async ValueTask<TrainingBatch?> NextAsync(CancellationToken ct)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var reader = _queue.Reader;
        if (reader.TryRead(out var ready)) return ready;
        var start = Stopwatch.GetTimestamp();
        try
        {
            while (await reader.WaitToReadAsync(ct))
                if (reader.TryRead(out var batch)) return batch;
        }
        finally
        {
            Interlocked.Add(ref _waitTicks, Stopwatch.GetElapsedTime(start).Ticks);
        }
        // The producer completes the queue in its finally, so it is finished here; awaiting it rethrows its failure.
        await _producer;
        return null;
    }

    /// <summary>
    /// <see cref="NextAsync"/> for a stage: a shard that cannot be read (missing, corrupt, undecodable) becomes a stage
    /// error that says to rebuild the shards.
    /// </summary>
    public async ValueTask<TrainingBatch?> NextForStageAsync(CancellationToken ct)
    {
        try
        {
            return await NextAsync(ct);
        }
        catch (Exception e) when (IsBadShard(e))
        {
            throw new Execution.StageInputException($"{e.Message} Re-run the shard stage (with --no-cache) to rebuild the shards.", e);
        }
    }

    /// <summary>What an unreadable shard throws: bad content, a sha256 mismatch, a missing blob.</summary>
    public static bool IsBadShard(Exception e) =>
        e is InvalidDataException or Artifacts.ArtifactCorruptedException or Artifacts.ArtifactNotFoundException;

    /// <summary>
    /// Cancels and awaits the producer. Never throws: a producer failure is reported by <see cref="NextAsync"/>, and a
    /// consumer that stops early must not have its own exception replaced by one from a batch it never asked for.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed) return;
        _disposed = true;
        await _stop.CancelAsync();
        try
        {
            await _producer;
        }
        catch (Exception)
        {
            // See the summary: cancellation is expected, any other failure belongs to NextAsync.
        }
        _stop.Dispose();
    }

    private async Task ProduceAsync(CancellationToken ct)
    {
        try
        {
            await ProduceBatchesAsync(ct);
        }
        finally
        {
            _queue.Writer.TryComplete();
        }
    }

    private async Task ProduceBatchesAsync(CancellationToken ct)
    {
        var o = _options;
        var manifest = _reader.Manifest;
        var shards = manifest.Split(o.Split).Shards;
        var used = EpochOrder.SampleCount(manifest, o.Split, o.MaxSamples);
        var end = o.DropLast ? used / o.BatchSize * o.BatchSize : used;
        var first = (long)o.StartBatch * o.BatchSize;
        if (first >= end) return;

        var pending = new List<PendingSample>(o.BatchSize);
        var batchIndex = o.StartBatch;
        long shardStart = 0;
        foreach (var shardIndex in EpochOrder.Shards(manifest, o.Split, o.Seed, o.Epoch, o.Shuffle))
        {
            var shard = shards[shardIndex];
            var shardEnd = shardStart + shard.Samples;
            // Resume: shards wholly before the first position are skipped on their manifest count, never read.
            if (shardEnd > first && shardStart < end)
            {
                var samples = await ReadShardAsync(shard, ct);
                var order = EpochOrder.Samples(shard.Samples, shardIndex, o.Split, o.Seed, o.Epoch, o.Shuffle);
                var from = (int)Math.Max(0, first - shardStart);
                var to = (int)Math.Min(shard.Samples, end - shardStart);
                for (var j = from; j < to; j++)
                {
                    var sample = samples[order[j]];
                    if (sample.ClassIndex < 0 || sample.ClassIndex >= manifest.Classes.Count)
                        throw new InvalidDataException($"Sample '{sample.Key}' in shard '{manifest.ShardPath(shard)}' has label {sample.ClassIndex}, outside [0, {manifest.Classes.Count}) of the manifest's {manifest.Classes.Count} classes. Re-run the shard stage.");
                    pending.Add(new PendingSample(sample, shard, shardStart + j));
                    if (pending.Count == o.BatchSize)
                    {
                        await _queue.Writer.WriteAsync(Render(pending, batchIndex++, ct), ct);
                        pending.Clear();
                    }
                }
            }
            shardStart = shardEnd;
            if (shardStart >= end) break;
        }
        if (pending.Count > 0) await _queue.Writer.WriteAsync(Render(pending, batchIndex, ct), ct);
    }

    /// <summary>All samples of a shard in file order, with store and format errors reworded to name the shard.</summary>
    private async Task<List<ShardSample>> ReadShardAsync(ShardFileInfo shard, CancellationToken ct)
    {
        var path = _reader.Manifest.ShardPath(shard);
        var samples = new List<ShardSample>(shard.Samples);
        try
        {
            await foreach (var sample in _reader.ReadShardAsync(shard, ct)) samples.Add(sample);
        }
        catch (Exception e) when (e is not OperationCanceledException && !e.Message.Contains(path, StringComparison.Ordinal))
        {
            throw new InvalidDataException($"Shard '{path}' could not be read: {e.Message} Re-run the shard stage.", e);
        }
        if (samples.Count != shard.Samples)
            throw new InvalidDataException($"Shard '{path}' holds {samples.Count} samples but the manifest says {shard.Samples}. Re-run the shard stage.");
        return samples;
    }

    /// <summary>Decodes and transforms a batch's samples in parallel, each into its own slice of one float array.</summary>
    private TrainingBatch Render(List<PendingSample> pending, int index, CancellationToken ct)
    {
        var o = _options;
        var count = pending.Count;
        var length = _transform.SampleLength;
        var images = new float[count * length];
        var errors = new Exception?[count];
        void RenderOne(int i)
        {
            var p = pending[i];
            try
            {
                _transform.Apply(p.Sample.Image, EpochOrder.AugmentationSeed(o.Seed, o.Epoch, o.Split, p.Position), images.AsSpan(i * length, length));
            }
            catch (Exception e)
            {
                errors[i] = e;
            }
        }
        if (o.DecodeThreads == 1 || count == 1)
        {
            for (var i = 0; i < count; i++)
            {
                ct.ThrowIfCancellationRequested();
                RenderOne(i);
            }
        }
        else
        {
            Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = o.DecodeThreads, CancellationToken = ct }, RenderOne);
        }
        // The first failure by position, not by time, so the reported sample does not depend on thread timing.
        for (var i = 0; i < count; i++)
        {
            if (errors[i] is not { } e) continue;
            var p = pending[i];
            throw new InvalidDataException($"Sample '{p.Sample.Key}' in shard '{_reader.Manifest.ShardPath(p.Shard)}' could not be decoded: {e.Message}", e);
        }
        var labels = new long[count];
        var keys = new string[count];
        for (var i = 0; i < count; i++) (labels[i], keys[i]) = (pending[i].Sample.ClassIndex, pending[i].Sample.Key);
        return new TrainingBatch(images, labels, keys, count, index);
    }

    private readonly record struct PendingSample(ShardSample Sample, ShardFileInfo Shard, long Position);
}
