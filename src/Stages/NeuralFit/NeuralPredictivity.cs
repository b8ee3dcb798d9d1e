using Pipeline.Stages.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Pipeline.Stages.NeuralFit;

/// <summary>A data bin fitted with a model step: bin [StartMs, EndMs) ↔ step <see cref="Step"/> (t ↔ [10t, 10t + 10) ms).</summary>
public sealed record FittedBin(int DataIndex, int StartMs, int EndMs, int Step);

/// <summary>
/// One (area, bin, layer, method) score. <see cref="RawR"/>: per split the median over the area's sites of Pearson r on
/// the held-out stimuli, then the mean over splits (± <see cref="RawSem"/>, the SEM over splits).
/// <see cref="Ceiling"/>: the median over sites of the Spearman–Brown-corrected split-half reliability.
/// <see cref="NoiseCorrected"/> = raw / ceiling (± <see cref="Sem"/>), as Brain-Score ceils a score; NaN when the
/// ceiling is not positive (a bin without reliable signal). The ceiling is the reliability ρ of the repetition mean, and
/// a noiseless perfect model correlates with that mean at √ρ, so raw / ceiling reaches 1/√ρ (above 1) for it;
/// <see cref="NoiseCorrectedSqrt"/> = raw / √ceiling (the correction of Nayebi's later toolkit with a noiseless model)
/// reaches 1.
/// </summary>
public sealed record PredictivityRow(
    string Area, int BinStartMs, int BinEndMs, int Step, string Layer, string Method, int Sites,
    double RawR, double RawSem, double Ceiling, double NoiseCorrected, double Sem)
{
    public double NoiseCorrectedSqrt => Ceiling > 0 ? RawR / Math.Sqrt(Ceiling) : double.NaN;
}

/// <summary>What to fit: areas, bins, layers and methods, with the regression settings shared by all fits.</summary>
public sealed record PredictivityOptions
{
    public required IReadOnlyList<string> Areas { get; init; }
    public required IReadOnlyList<FittedBin> Bins { get; init; }
    public required IReadOnlyList<string> Layers { get; init; }
    public IReadOnlyList<RegressionKind> Methods { get; init; } = [RegressionKind.Pls];

    /// <summary>Splits, test fraction, PLS components, ridge penalties, seed and device (the kind is set per method).</summary>
    public RegressionOptions Regression { get; init; } = new();

    /// <summary>Random halvings of the repetitions averaged by the split-half ceiling.</summary>
    public int Halvings { get; init; } = 10;
}

/// <summary>
/// The neural-fit science: for each area, bin and layer, cross-validated regression of the repetition-averaged responses
/// on the layer's features at the bin's model step (<see cref="NeuralScoring.CrossValidated"/>), the area's split-half
/// ceiling in that bin, and the noise-corrected score. Tensors in, rows out; no I/O.
/// </summary>
public static class NeuralPredictivity
{
    /// <param name="features">Per layer, float32 <c>[bins, stimuli, D]</c> in <see cref="PredictivityOptions.Bins"/> order
    /// and the assembly's <see cref="NeuralAssembly.StimulusIds"/> order.</param>
    /// <param name="progress">Fraction done and a short status, after each (area, bin).</param>
    public static IReadOnlyList<PredictivityRow> Score(NeuralAssembly assembly, IReadOnlyDictionary<string, Tensor> features, PredictivityOptions options,
        Action<double, string>? progress = null, CancellationToken ct = default)
    {
        var objects = assembly.StimulusObjects;
        var objectIndex = objects.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).Select((o, i) => (o, i)).ToDictionary(x => x.o, x => x.i, StringComparer.Ordinal);
        var labels = objects.Select(o => objectIndex[o]).ToArray();
        using var averaged = assembly.AveragedResponses();   // [stimuli, neuroids, bins]
        using var repetitions = assembly.Repetitions();      // [reps, stimuli, neuroids, bins]
        var rows = new List<PredictivityRow>();
        var total = options.Areas.Count * options.Bins.Count;
        var done = 0;
        foreach (var area in options.Areas)
        {
            var siteIndex = assembly.SitesOf(area);
            if (siteIndex.Length == 0) throw new ArgumentException($"no sites of region '{area}' in the data");
            using var sites = tensor(siteIndex.Select(i => (long)i).ToArray());
            for (var b = 0; b < options.Bins.Count; b++)
            {
                ct.ThrowIfCancellationRequested();
                var bin = options.Bins[b];
                using var scope = NewDisposeScope();
                var y = averaged.select(2, bin.DataIndex).index_select(1, sites);                  // [stimuli, sites]
                var trials = repetitions.select(3, bin.DataIndex).index_select(2, sites);          // [reps, stimuli, sites]
                var ceiling = RegressionResult.Median(NeuralScoring.SplitHalfCeiling(trials, options.Halvings, options.Regression.Seed).data<double>().ToArray());
                foreach (var layer in options.Layers)
                {
                    var x = features[layer][b];
                    var informative = VariesAcrossStimuli(x);
                    foreach (var method in options.Methods)
                    {
                        // A layer that shows every stimulus the same (e.g. the first layer once the image is off) can only
                        // predict a constant: it carries no information about the stimulus, scored as r = 0.
                        var (raw, rawSem) = informative ? NeuralScoring.CrossValidated(x, y, labels, options.Regression with { Kind = method }).OverSplits() : (0.0, 0.0);
                        var usable = ceiling > 0;
                        rows.Add(new PredictivityRow(area, bin.StartMs, bin.EndMs, bin.Step, layer, MethodName(method), siteIndex.Length,
                            raw, rawSem, ceiling, usable ? raw / ceiling : double.NaN, usable ? rawSem / ceiling : double.NaN));
                    }
                }
                done++;
                progress?.Invoke((double)done / total, $"{area} {bin.StartMs}-{bin.EndMs} ms ({done}/{total})");
            }
        }
        return rows;
    }

    /// <summary>Whether any feature varies across stimuli beyond float32 rounding of its magnitude.</summary>
    internal static bool VariesAcrossStimuli(Tensor x)
    {
        using var scope = NewDisposeScope();
        var x64 = x.to(float64);
        var spread = (x64 - x64.mean([0])).square().sum(dim: 0);
        var size = x64.square().sum(dim: 0);
        return spread.gt(HeldScalars.Times(size, 1e-10)).any().item<bool>();
    }

    public static string MethodName(RegressionKind kind) => kind == RegressionKind.Pls ? "pls" : "ridge";
}
