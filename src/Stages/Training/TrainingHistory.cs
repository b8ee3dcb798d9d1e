using System.Text.Json.Serialization;

namespace Pipeline.Stages.Training;

// NaN/Infinity written as "NaN"/"Infinity": a diverged run's loss must not make its checkpoint unwritable.
/// <summary>One logged training interval: mean loss and accuracy over it, the learning rate, and the input pipeline's share of the time.</summary>
[JsonNumberHandling(JsonNumberHandling.AllowNamedFloatingPointLiterals)]
public sealed record TrainPoint(long Step, int Epoch, double Loss, double Accuracy, double LearningRate, double ImagesPerSecond, double InputWaitFraction);

/// <summary>
/// One evaluation on held-out data. <paramref name="ReadoutStep"/> is the unroll time step the class was read out at
/// (recurrent models evaluated at several), null for a single read-out.
/// </summary>
[JsonNumberHandling(JsonNumberHandling.AllowNamedFloatingPointLiterals)]
public sealed record EvalPoint(long Step, int Epoch, double Loss, double Top1, double Top5, int? ReadoutStep)
{
    public double ImagesPerSecond { get; init; }
}

/// <summary>
/// History of a training run, kept in checkpoints (JSON, snake_case via <see cref="PipelineJson.Options"/>) so a resumed
/// run's curves are complete.
/// </summary>
public sealed record TrainingHistory(List<TrainPoint> Train, List<EvalPoint> Eval)
{
    public static TrainingHistory Empty() => new([], []);
}
