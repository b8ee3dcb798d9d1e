using System.Text;
using Pipeline.Stages.Reporting;

namespace Pipeline.Stages.Sweeps;

/// <summary>
/// The sweep's three figures (top-1 in %, ± 1 SEM over the validation images, chance and the baselines as horizontal
/// lines): accuracy vs readout step with the image-off step marked, vs unroll length with the training T marked (one
/// line per readout rule), and vs image duration.
/// </summary>
public static class SweepPlots
{
    public sealed record Rendered(string Name, byte[] Png, string Svg);

    public const string ReadoutStep = "readout_step";
    public const string UnrollLength = "unroll_length";
    public const string ImageDuration = "image_duration";

    public static IEnumerable<Rendered> All(TimestepSweep sweep)
    {
        var title = $"{sweep.Model} ({sweep.Stage}): top-1 over time, {sweep.Images:N0} validation images";
        var ms = sweep.StepMs;
        var readout = Panel(sweep, "accuracy vs readout step", $"readout step t (1 step ≈ {ms:0} ms)")
            .Line($"{sweep.Model}, T {sweep.TrainingSteps}", sweep.ReadoutStep.Select(p => ((double)p.Step, 100 * p.Accuracy.Top1, 100 * p.Accuracy.Top1Sem)));
        // The image goes off between step k − 1 and step k.
        if (sweep.TrainingImageSteps < sweep.TrainingSteps) readout.Marker("image off", sweep.TrainingImageSteps - 0.5);
        yield return Render(ReadoutStep, title, readout);

        var unroll = Panel(sweep, "accuracy vs unroll length", "unroll length T (steps)")
            .Line($"{sweep.Readout} (own readout)", sweep.UnrollLength.Select(p => ((double)p.Steps, 100 * p.Accuracy.Top1, 100 * p.Accuracy.Top1Sem)));
        foreach (var rule in sweep.ReadoutRules.Select(r => r.Rule).Where(r => r != sweep.Readout))
            unroll.Line(rule, sweep.UnrollLength.Select(p => ((double)p.Steps, 100 * p.Top1ByRule[rule])), dashed: true);
        yield return Render(UnrollLength, title, unroll.Marker($"training T = {sweep.TrainingSteps}", sweep.TrainingSteps));

        yield return Render(ImageDuration, title, Panel(sweep, $"accuracy vs image duration (read out at T {sweep.TrainingSteps})", $"image shown for k steps (× {ms:0} ms)")
            .Line(sweep.Model, sweep.ImageDuration.Select(p => ((double)p.ImageSteps, 100 * p.Accuracy.Top1, 100 * p.Accuracy.Top1Sem)))
            .Marker("training duration", sweep.TrainingImageSteps));
    }

    private static LinePanel Panel(TimestepSweep sweep, string title, string xLabel)
    {
        var panel = new LinePanel(title, xLabel, "top-1 accuracy (%)") { Size = (760, 440) }.Chance(sweep.Classes, scale: 100).IntegerX().IncludeY(0);
        // A baseline keeps one colour in all three figures, after those of the most lines a figure draws (one per
        // readout rule), so it never shares a colour with a curve.
        var i = TimestepSweep.Rules(0.5).Count;
        foreach (var b in sweep.Baselines)
            panel.Reference($"{b.Stage} ({b.Model}, T {b.Steps})", 100 * b.Accuracy.Top1, FigureStyle.SeriesColor(i++));
        return panel;
    }

    private static Rendered Render(string name, string title, LinePanel panel)
    {
        var figure = new Figure(title, panel);
        return new Rendered(name, figure.Png(), figure.Svg());
    }
}
