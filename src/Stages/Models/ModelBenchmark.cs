using System.Diagnostics;
using Pipeline.Stages.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Pipeline.Stages.Models;

/// <summary>One preset's throughput: images/s for a forward pass (eval, no grad) and for forward + backward + SGD step.</summary>
public sealed record ModelBenchmarkResult(string Preset, long Parameters, int Steps, double ForwardImagesPerSecond, double TrainImagesPerSecond);

/// <summary>
/// Measures a full unroll (the preset's default T) on random images: one warm-up, then the median of
/// <c>repeats</c> timed iterations, for inference and for a training step (cross-entropy on the readout, backward
/// through time, SGD). Every iteration runs in its own dispose scope, as training does.
/// </summary>
public static class ModelBenchmark
{
    public static ModelBenchmarkResult Run(string preset, int inputSize, int batch, int classes = 1000, double width = 1.0, int repeats = 3, int seed = 0) =>
        Run(ModelPresets.Load(preset, inputSize, classes, width), batch, repeats, seed);

    /// <summary>The same for any spec (e.g. the one a trained model's sidecar records).</summary>
    public static ModelBenchmarkResult Run(ModelSpec spec, int batch, int repeats = 3, int seed = 0)
    {
        torch.manual_seed(seed);
        using var model = ModelFactory.Create(spec);
        var (inputSize, classes) = (model.Spec.InputSize, model.Spec.Classes);
        using var images = randn(batch, model.Spec.InChannels, inputSize, inputSize);
        using var labels = randint(0, classes, [batch], dtype: int64);
        using var sgd = new TrainingOptimizer(new OptimizerParams { LearningRate = 0.01, Momentum = 0.9, Nesterov = false, WeightDecay = 0 }, model.Module.parameters());

        model.Module.eval();
        var forward = Median(repeats, () =>
        {
            using var noGrad = no_grad();
            model.Unroll(images);
        });

        model.Module.train();
        var train = Median(repeats, () =>
        {
            sgd.ZeroGrad();
            var loss = nn.functional.cross_entropy(model.Unroll(images).Readout, labels);
            loss.backward();
            sgd.Step(0.01);
        });
        return new ModelBenchmarkResult(spec.Name, ModelStats.Parameters(model.Module), model.DefaultSteps, batch / forward, batch / train);
    }

    private static double Median(int repeats, Action iteration)
    {
        var seconds = new List<double>();
        for (var i = 0; i <= repeats; i++)
        {
            using var scope = NewDisposeScope();
            var clock = Stopwatch.StartNew();
            iteration();
            if (i > 0) seconds.Add(clock.Elapsed.TotalSeconds); // the first is a warm-up
        }
        seconds.Sort();
        return seconds[seconds.Count / 2];
    }
}
