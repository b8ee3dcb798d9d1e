using System.Diagnostics;
using Pipeline.Stages.Execution;
using Pipeline.Stages.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Pipeline.Stages.Training;

/// <summary>A loss that stayed NaN or infinite for too many consecutive steps.</summary>
internal sealed class NonFiniteLossException(string message) : Exception(message);

/// <summary>
/// One optimiser step per batch, and the train metrics: averaged over a window and sent to the run store (and the
/// history behind the curves) at most once per <see cref="TrainParams.MetricsIntervalSeconds"/>, so a fast run does
/// not write a row per step. Progress (fraction, ETA) is reported every step; the engine writes it once per heartbeat.
/// </summary>
internal sealed class StepLoop(TrainParams p, IVisionModel model, TrainingOptimizer optimizer, Device device, long totalSteps,
    int stepsPerEpoch, IStageProgress progress, TrainingHistory history)
{
    // malloc_trim returns freed native memory to the OS (flat RSS over long runs) but costs tens of milliseconds on a
    // large heap: once every few seconds keeps memory flat without slowing small steps down (measured: every step
    // halved the smoke preset's BaseNet throughput).
    private static readonly TimeSpan TrimInterval = TimeSpan.FromSeconds(5);

    private readonly Stopwatch _window = Stopwatch.StartNew();
    private readonly Stopwatch _sinceTrim = Stopwatch.StartNew();
    private TimeSpan _computeTotal;
    private TimeSpan _lastWait;
    private TimeSpan _waitInWindow;
    private TimeSpan _waitTotal;
    private double _lossSum;
    private long _correct;
    private long _images;
    private long _imagesTotal;
    private int _stepsInWindow;
    private int _nonFinite;

    /// <summary>The last step's loss was NaN or infinite (its update was skipped): no checkpoint should mark this point.</summary>
    public bool InNonFiniteStreak => _nonFinite > 0;

    /// <summary>Steps trained in this attempt.</summary>
    public long Steps { get; private set; }

    /// <summary>Training throughput of this attempt: images over the time spent in steps and waiting for input
    /// (evaluation and checkpoints excluded).</summary>
    public double ImagesPerSecond => _imagesTotal / Math.Max((_computeTotal + _waitTotal).TotalSeconds, 1e-9);

    /// <summary>Share of the training time spent waiting for the next batch.</summary>
    public double InputWaitFraction => _waitTotal.TotalSeconds / Math.Max((_computeTotal + _waitTotal).TotalSeconds, 1e-9);

    /// <param name="step">Steps completed before this one (the learning rate's argument).</param>
    /// <param name="loaderWait">The loader's total wait time so far (this epoch's loader).</param>
    public void Train(TrainingBatch batch, long step, int epoch, TimeSpan loaderWait)
    {
        var clock = Stopwatch.StartNew();
        var wait = loaderWait >= _lastWait ? loaderWait - _lastWait : loaderWait; // a new epoch's loader starts at zero
        _lastWait = loaderWait;
        _waitInWindow += wait;
        _waitTotal += wait;

        var lr = p.Schedule.LearningRateAt(step, totalSteps, stepsPerEpoch, p.Optimizer.LearningRate);

        double loss;
        long correct;
        using (var scope = NewDisposeScope())
        {
            var x = tensor(batch.Images, [batch.Count, model.Spec.InChannels, model.Spec.InputSize, model.Spec.InputSize]).to(device);
            var y = tensor(batch.Labels).to(device);
            optimizer.ZeroGrad();
            var result = model.Unroll(x);
            var (lossTensor, logits) = Loss(result, y);
            loss = lossTensor.ToDouble();
            correct = logits.argmax(1).eq(y).sum().ToInt64();
            if (double.IsFinite(loss))
            {
                _nonFinite = 0;
                lossTensor.backward();
                if (p.Clip.Value is { } value) nn.utils.clip_grad_value_(model.Module.parameters(), value);
                if (p.Clip.Norm is { } norm) nn.utils.clip_grad_norm_(model.Module.parameters(), norm);
                optimizer.Step(lr);
            }
            else if (++_nonFinite >= p.MaxNanSteps)
            {
                throw new NonFiniteLossException($"The training loss was {loss} for {_nonFinite} consecutive steps (up to step {step + 1}, learning rate {lr:G4}); training stopped.");
            }
        }
        if (_sinceTrim.Elapsed >= TrimInterval)
        {
            NativeHeap.Trim();
            _sinceTrim.Restart();
        }
        _computeTotal += clock.Elapsed;

        Steps++;
        _stepsInWindow++;
        _images += batch.Count;
        _imagesTotal += batch.Count;
        if (double.IsFinite(loss)) _lossSum += loss * batch.Count;
        _correct += correct;

        var done = step + 1;
        var rate = ImagesPerSecond;
        var eta = TimeSpan.FromSeconds((totalSteps - done) * p.BatchSize / Math.Max(rate, 1e-9));
        progress.Report((double)done / totalSteps, $"epoch {epoch + 1}, step {done}/{totalSteps}, loss {loss:F3}, {rate:F0} images/s, ETA {eta:hh\\:mm\\:ss}");
        if (_window.Elapsed.TotalSeconds >= p.MetricsIntervalSeconds || done == totalSteps) Flush(done, epoch, lr);
    }

    private (Tensor Loss, Tensor Logits) Loss(UnrollResult result, Tensor y)
    {
        var smoothing = p.LabelSmoothing;
        switch (p.LossOn)
        {
            case LossOn.Readout:
                return (nn.functional.cross_entropy(result.Readout, y, label_smoothing: smoothing), result.Readout);
            case LossOn.AllSteps:
                var losses = result.Logits.Select(l => nn.functional.cross_entropy(l, y, label_smoothing: smoothing)).ToArray();
                return (stack(losses).mean(), result.Logits[^1]);
            default:
                return (nn.functional.cross_entropy(result.Logits[^1], y, label_smoothing: smoothing), result.Logits[^1]);
        }
    }

    private void Flush(long step, int epoch, double lr)
    {
        var seconds = Math.Max(_window.Elapsed.TotalSeconds, 1e-9);
        var point = new TrainPoint(step, epoch,
            _images == 0 ? double.NaN : _lossSum / _images,
            _images == 0 ? 0 : (double)_correct / _images,
            lr,
            _images / seconds,
            Math.Min(1, _waitInWindow.TotalSeconds / seconds));
        history.Train.Add(point);
        progress.Metric("train_loss", point.Loss, step);
        progress.Metric("train_accuracy", point.Accuracy, step);
        progress.Metric("learning_rate", lr, step);
        progress.Metric("images_per_second", point.ImagesPerSecond, step);
        progress.Metric("step_seconds", seconds / Math.Max(1, _stepsInWindow), step);
        progress.Metric("input_wait_fraction", point.InputWaitFraction, step);
        progress.Metric("memory_mib", Environment.WorkingSet / (1024.0 * 1024.0), step);
        (_lossSum, _correct, _images, _stepsInWindow, _waitInWindow) = (0, 0, 0, 0, TimeSpan.Zero);
        _window.Restart();
    }
}
