using System.Globalization;
using System.Text;
using System.Text.Json;
using Pipeline.Stages.Models;
using static TorchSharp.torch;

namespace Pipeline.Stages.Sweeps;

/// <summary>An accuracy measured on <see cref="Images"/> validation images, with its binomial standard error.</summary>
public sealed record SweepAccuracy(double Top1, double Top1Sem, double? Top5, int Images)
{
    public static SweepAccuracy Of(Tensor logits, Tensor labels, bool topFive)
    {
        var n = (int)labels.shape[0];
        var (hit1, hit5) = Accuracy.Hits(logits, labels);
        var top1 = (double)hit1 / n;
        return new SweepAccuracy(top1, Accuracy.StandardError(top1, n), topFive ? (double)hit5 / n : null, n);
    }
}

/// <summary>Accuracy at readout step <see cref="Step"/> (0-based; one step ≈ 10 ms) of the training presentation.</summary>
public sealed record ReadoutStepPoint(int Step, SweepAccuracy Accuracy);

/// <summary>Accuracy after an unroll of <see cref="Steps"/> steps, by the model's own readout and by every readout rule.</summary>
public sealed record UnrollLengthPoint(int Steps, SweepAccuracy Accuracy, IReadOnlyDictionary<string, double> Top1ByRule);

/// <summary>Accuracy (the model's readout at the training T) when the image goes off after <see cref="ImageSteps"/> steps.</summary>
public sealed record ImageDurationPoint(int ImageSteps, SweepAccuracy Accuracy);

/// <summary>Accuracy of one readout rule at the training T, and the mean step it read out at.</summary>
public sealed record ReadoutRulePoint(string Rule, SweepAccuracy Accuracy, double MeanStep);

/// <summary>A trained model evaluated once with its own T and readout: a reference line.</summary>
public sealed record BaselinePoint(string Stage, string Model, int Steps, long Parameters, SweepAccuracy Accuracy);

/// <summary>The best readout step of the training presentation.</summary>
public sealed record SweepPeak(int Step, double Top1);

/// <summary>What <c>timestep_sweep.json</c> holds: the four analyses of one model, with its baselines beside it.</summary>
public sealed record TimestepSweep
{
    public required string Stage { get; init; }
    public required string Model { get; init; }
    public required bool Feedforward { get; init; }
    public required long Parameters { get; init; }
    public required int TrainingSteps { get; init; }
    public required int TrainingImageSteps { get; init; }
    public required int MinimalSteps { get; init; }
    public required int MaxSteps { get; init; }
    public required string Readout { get; init; }
    public required int Classes { get; init; }
    public required double Chance { get; init; }
    public required int Images { get; init; }
    public required double StepMs { get; init; }
    public required IReadOnlyList<ReadoutStepPoint> ReadoutStep { get; init; }
    public required IReadOnlyList<UnrollLengthPoint> UnrollLength { get; init; }
    public required IReadOnlyList<ImageDurationPoint> ImageDuration { get; init; }
    public required IReadOnlyList<ReadoutRulePoint> ReadoutRules { get; init; }
    public required IReadOnlyList<BaselinePoint> Baselines { get; init; }
    public required SweepPeak Peak { get; init; }

    /// <summary>The accuracy at the training T with the model's own readout (what the train stage reported).</summary>
    public SweepAccuracy AtTraining => UnrollLength.Single(u => u.Steps == TrainingSteps).Accuracy;

    /// <summary>
    /// One long table: <c>analysis</c> (readout_step, unroll_length, image_duration, readout_rule, baseline), <c>x</c>
    /// (the step, T or image steps; empty for rules and baselines), <c>series</c> (the readout rule or baseline stage),
    /// top-1 with its standard error, top-5 (empty with ≤ 5 classes) and the images evaluated.
    /// </summary>
    public string ToCsv()
    {
        var csv = new StringBuilder("analysis,x,series,top1,top1_sem,top5,images\n");
        void Row(string analysis, int? x, string series, SweepAccuracy a) => csv.Append(CultureInfo.InvariantCulture,
            $"{analysis},{x},{series},{a.Top1:R},{a.Top1Sem:R},{(a.Top5 is { } t5 ? t5.ToString("R", CultureInfo.InvariantCulture) : "")},{a.Images}\n");
        foreach (var p in ReadoutStep) Row("readout_step", p.Step, "step", p.Accuracy);
        foreach (var p in UnrollLength)
        {
            Row("unroll_length", p.Steps, Readout, p.Accuracy);
            foreach (var (rule, top1) in p.Top1ByRule.Where(r => r.Key != Readout))
                Row("unroll_length", p.Steps, rule, new SweepAccuracy(top1, Accuracy.StandardError(top1, p.Accuracy.Images), null, p.Accuracy.Images));
        }
        foreach (var p in ImageDuration) Row("image_duration", p.ImageSteps, Readout, p.Accuracy);
        foreach (var p in ReadoutRules) Row("readout_rule", null, p.Rule, p.Accuracy);
        foreach (var b in Baselines) Row("baseline", b.Steps, b.Stage, b.Accuracy);
        return csv.ToString();
    }

    /// <summary>The readout rules of the model library the sweep compares (sum ranks classes as mean does).</summary>
    public static IReadOnlyList<ReadoutSpec> Rules(double threshold) =>
    [
        new() { Kind = ReadoutKind.Last },
        new() { Kind = ReadoutKind.Mean },
        new() { Kind = ReadoutKind.MaxConfidence },
        new() { Kind = ReadoutKind.Threshold, Threshold = threshold },
    ];

    public static string RuleName(ReadoutSpec rule) => JsonNamingPolicy.SnakeCaseLower.ConvertName(rule.Kind.ToString());
}
