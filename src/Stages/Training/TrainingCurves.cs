using Pipeline.Stages.Reporting;

namespace Pipeline.Stages.Training;

/// <summary>
/// Training curves as one figure (<see cref="Figure"/>): loss in nats (train and eval), accuracy in % (train, eval
/// top-1 and — only with more than five classes, where it is not trivially 100 % — eval top-5, with the chance line at
/// 1/classes) and the learning rate on a logarithmic axis, each against the optimizer step, legends right of the data.
/// </summary>
/// <remarks>
/// Non-finite values (a diverged loss) are left out of a series instead of failing the render. Evaluations read out at
/// several unroll steps get one series per read-out step. Text needs a font on the machine (<see cref="PlotFonts"/>).
/// </remarks>
public static class TrainingCurves
{
    /// <param name="classes">The dataset's class count: places the chance line (from 2 classes) and decides whether top-5
    /// is drawn.</param>
    public static Figure Build(TrainingHistory history, string title, int classes)
    {
        ArgumentNullException.ThrowIfNull(history);
        var train = history.Train ?? [];
        var eval = history.Eval ?? [];
        var readouts = eval.GroupBy(p => p.ReadoutStep).OrderBy(g => g.Key ?? int.MinValue).ToList();

        var loss = new LinePanel("loss", "optimizer step", "cross-entropy loss (nats)")
            .Line("train", train.Select(p => ((double)p.Step, p.Loss)));
        foreach (var group in readouts)
            loss.Line(Name("eval", group.Key), group.Select(p => ((double)p.Step, p.Loss)));

        var accuracy = new LinePanel("accuracy", "optimizer step", "accuracy (%)")
            .Line("train top-1", train.Select(p => ((double)p.Step, 100 * p.Accuracy)));
        foreach (var group in readouts)
        {
            accuracy.Line(Name("eval top-1", group.Key), group.Select(p => ((double)p.Step, 100 * p.Top1)));
            if (classes > 5) accuracy.Line(Name("eval top-5", group.Key), group.Select(p => ((double)p.Step, 100 * p.Top5)), dashed: true);
        }
        if (classes >= 2) accuracy.Chance(classes, scale: 100);

        var rates = train.Select(p => p.LearningRate).Where(double.IsFinite).ToList();
        var positive = rates.Where(r => r > 0).Distinct().ToList();
        var rateLabel = positive.Count == 1 && rates.All(r => r == positive[0]) ? $"constant {LinePanel.Format(positive[0])}"
            : rates.Any(r => r <= 0) ? "steps at 0 not shown" : "schedule";
        var rate = new LinePanel("learning rate", "optimizer step", "learning rate (log scale)")
            .Line($"learning rate ({rateLabel})", train.Select(p => ((double)p.Step, p.LearningRate)))
            .LogY();

        return new Figure(title, loss, accuracy, rate);
    }

    public static byte[] RenderPng(TrainingHistory history, string title, int classes) => Build(history, title, classes).Png();

    public static string RenderSvg(TrainingHistory history, string title, int classes) => Build(history, title, classes).Svg();

    private static string Name(string series, int? readoutStep) => readoutStep is { } t ? $"{series} (t={t})" : series;
}
