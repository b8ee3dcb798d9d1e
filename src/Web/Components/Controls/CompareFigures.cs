using Pipeline.Jobs.Runs;
using Pipeline.Stages.NeuralFit;
using Pipeline.Stages.Reporting;
using Pipeline.Stages.Sweeps;
using Plotly.Blazor;
using Plotly.Blazor.LayoutLib;
using Plotly.Blazor.Traces;
using Plotly.Blazor.Traces.ScatterLib;

namespace Pipeline.Web.Components.Controls;

/// <summary>One interactive chart of the Compare page: its traces and layout, and what a test or a reader checks it by.</summary>
public sealed record CompareFigure(string Key, IList<ITrace> Data, Plotly.Blazor.Layout Layout, int Points);

/// <summary>A row of the layer × area summary: the best layer of an area in one neural fit beside the paper's layers for it.</summary>
public sealed record BestLayerRow(string Fit, string Area, string Layer, string ScoredBy, double? Score, IReadOnlyList<string>? PaperLayers)
{
    /// <summary>Null without a paper claim for this model and area.</summary>
    public bool? AsInPaper => PaperLayers is null ? null : PaperLayers.Contains(Layer);
}

/// <summary>
/// The Compare page's charts, built from what <see cref="RunResults.ComparedAsync"/> read: accuracy against parameters
/// beside the paper's models, accuracy over readout time and unroll length from the timestep sweeps, each area's
/// predictivity over time and the layer × area map from the neural fits, and a search's objective against parameters
/// with its Pareto front.
/// </summary>
public static class CompareFigures
{
    /// <summary>Top-1 (%) against parameter count for the compared train stages, beside the paper's reference models.</summary>
    public static CompareFigure AccuracyVsParameters(IReadOnlyList<(string Label, long Parameters, double Top1)> ours, PaperReference paper)
    {
        var data = new List<ITrace>
        {
            Markers("these runs", ours.Select(o => (double)o.Parameters), ours.Select(o => o.Top1 * 100), ours.Select(o => o.Label)),
            Markers("paper (ImageNet)", paper.Models.Select(m => (double)m.Parameters), paper.Models.Select(m => m.Top1 * 100), paper.Models.Select(m => m.Name)),
        };
        return new("accuracy-vs-parameters", data, Layout("top-1 accuracy vs parameters", "parameters", "top-1 accuracy (%)", logX: true), ours.Count);
    }

    /// <summary>Each sweep's top-1 at every readout step of its training presentation (x: the step's end, ms), its chance level dashed.</summary>
    public static CompareFigure AccuracyOverTime(IReadOnlyList<SweepResult> sweeps)
    {
        var data = new List<ITrace>();
        foreach (var s in sweeps)
        {
            var ms = s.Sweep.ReadoutStep.Select(p => (p.Step + 1) * s.Sweep.StepMs).ToList();
            data.Add(Line($"{s.Of.Label} {s.Sweep.Model}", ms, s.Sweep.ReadoutStep.Select(p => p.Accuracy.Top1 * 100)));
            foreach (var b in s.Sweep.Baselines)
            {
                data.Add(Line($"{s.Of.Label} baseline {b.Stage} ({b.Model})", [ms[0], ms[^1]], [b.Accuracy.Top1 * 100, b.Accuracy.Top1 * 100], dash: "dot"));
            }
            data.Add(Line($"{s.Of.Label} chance", [ms[0], ms[^1]], [s.Sweep.Chance * 100, s.Sweep.Chance * 100], dash: "dash"));
        }
        return new("accuracy-over-time", data, Layout("top-1 accuracy by readout time (timestep sweeps)", "readout at the end of step (ms; one step = 10 ms)", "top-1 accuracy (%)"),
            sweeps.Sum(s => s.Sweep.ReadoutStep.Count));
    }

    /// <summary>Each sweep's top-1 after an unroll of T steps (the model's own readout).</summary>
    public static CompareFigure AccuracyVsUnroll(IReadOnlyList<SweepResult> sweeps)
    {
        var data = sweeps.Select(s => (ITrace)Line($"{s.Of.Label} {s.Sweep.Model}", s.Sweep.UnrollLength.Select(u => (double)u.Steps),
            s.Sweep.UnrollLength.Select(u => u.Accuracy.Top1 * 100))).ToList();
        return new("accuracy-vs-unroll", data, Layout("top-1 accuracy by unroll length", "unroll length T (steps)", "top-1 accuracy (%)"),
            sweeps.Sum(s => s.Sweep.UnrollLength.Count));
    }

    /// <summary>Per neural fit and area, the time-averaged best layer's score in every 10 ms bin (its first method's profile).</summary>
    public static CompareFigure PredictivityOverTime(IReadOnlyList<NeuralFitResult> fits)
    {
        var data = new List<ITrace>();
        var points = 0;
        foreach (var f in fits)
        {
            foreach (var p in Primary(f, f.Profiles, x => x.Method))
            {
                var kept = p.Points.Where(x => x.BestLayerScore is not null && !x.BelowMinCeiling).ToList();
                data.Add(Line($"{f.Of.Label} {p.Area} ({p.BestLayer})", kept.Select(x => (double)x.BinStartMs), kept.Select(x => x.BestLayerScore!.Value)));
                points += kept.Count;
            }
        }
        return new("predictivity-over-time", data, Layout($"neural predictivity over time, best layer per area ({ScoredBy(fits)})", "bin start (ms after image onset)", ScoredBy(fits)), points);
    }

    /// <summary>One neural fit's layer × area map: every layer's time-averaged score per area (its first method), the value written in each cell.</summary>
    public static CompareFigure LayerAreaMap(NeuralFitResult fit)
    {
        var best = Primary(fit, fit.Best, b => b.Method).ToList();
        var layers = best.SelectMany(b => b.ByLayer.Keys).Distinct().ToList();
        var z = layers.Select(l => (object)best.Select(b => (object?)b.ByLayer.GetValueOrDefault(l)).ToList()).ToList();
        var heatmap = new HeatMap
        {
            Name = fit.Of.Label,
            X = best.Select(b => (object)b.Area).ToList(),
            Y = layers.Cast<object>().ToList(),
            Z = z,
            TextTemplate = "%{z:.2f}",
            ColorScale = "Viridis",
        };
        var layout = Layout($"{fit.Of.Label}: layer × area ({ScoredBy([fit])})", "area", "layer");
        layout.XAxis[0].Type = Plotly.Blazor.LayoutLib.XAxisLib.TypeEnum.Category;
        layout.YAxis[0].AutoRange = Plotly.Blazor.LayoutLib.YAxisLib.AutoRangeEnum.Reversed;
        return new($"layer-area-{fit.Of.RunId}-{fit.Of.Stage}", [heatmap], layout, layers.Count * best.Count);
    }

    /// <summary>The best layer of every area in every fit, beside the layers the paper maps that area onto for the model's family.</summary>
    public static IReadOnlyList<BestLayerRow> BestLayers(IReadOnlyList<NeuralFitResult> fits, PaperReference paper) =>
        [.. fits.SelectMany(f => Primary(f, f.Best, b => b.Method)
            .Select(b => new BestLayerRow(f.Of.Label, b.Area, b.Layer, b.ScoredBy, b.Score, paper.NeuralMapping.LayersFor(f.Model, b.Area))))];

    /// <summary>A search's trials with an objective against their parameter count, the Pareto front drawn through its trials.</summary>
    public static CompareFigure Pareto(LeaderboardResult result)
    {
        var board = result.Board;
        var ranked = board.Rows.Where(r => r.HasObjective && r.Parameters is not null).ToList();
        var front = board.ParetoFront.Select(t => ranked.FirstOrDefault(r => r.Trial == t)).OfType<LeaderboardRow>().OrderBy(r => r.Parameters).ToList();
        var data = new List<ITrace>
        {
            Markers("trials", ranked.Select(r => (double)r.Parameters!.Value), ranked.Select(r => r.Objective!.Value), ranked.Select(r => $"trial {r.Trial}")),
            Line("Pareto front", front.Select(r => (double)r.Parameters!.Value), front.Select(r => r.Objective!.Value), shape: Plotly.Blazor.Traces.ScatterLib.LineLib.ShapeEnum.Hv),
        };
        return new($"pareto-{result.Of.RunId}-{result.Of.Stage}", data,
            Layout($"{result.Of.Label}: {board.Objective.Metric} of {board.Objective.Of} vs parameters ({board.Objective.Direction})", "parameters", board.Objective.Metric, logX: true),
            ranked.Count);
    }

    /// <summary>The fit's first method's entries (a fit of several methods shows the one its tables lead with).</summary>
    private static IEnumerable<T> Primary<T>(NeuralFitResult fit, IReadOnlyList<T> items, Func<T, string> method)
    {
        var first = fit.Best.Count > 0 ? fit.Best[0].Method : items.Select(method).FirstOrDefault();
        return items.Where(i => method(i) == first);
    }

    /// <summary>The score the fits chose their best layers on (e.g. noise_corrected), or "score" when they differ.</summary>
    private static string ScoredBy(IReadOnlyList<NeuralFitResult> fits) =>
        fits.SelectMany(f => f.Best.Select(b => b.ScoredBy)).Distinct().ToList() is [var one] ? one : "score";

    private static Scatter Markers(string name, IEnumerable<double> x, IEnumerable<double> y, IEnumerable<string> text) => new()
    {
        Name = name,
        Mode = ModeFlag.Markers | ModeFlag.Text,
        TextPosition = TextPositionEnum.TopCenter,
        X = x.Cast<object>().ToList(),
        Y = y.Cast<object>().ToList(),
        TextArray = text.ToList(),
    };

    private static Scatter Line(string name, IEnumerable<double> x, IEnumerable<double> y, string? dash = null, Plotly.Blazor.Traces.ScatterLib.LineLib.ShapeEnum shape = Plotly.Blazor.Traces.ScatterLib.LineLib.ShapeEnum.Linear) => new()
    {
        Name = name,
        Mode = dash is null ? ModeFlag.Lines | ModeFlag.Markers : ModeFlag.Lines,
        X = x.Cast<object>().ToList(),
        Y = y.Cast<object>().ToList(),
        Line = new Plotly.Blazor.Traces.ScatterLib.Line { Dash = dash ?? "solid", Shape = shape },
    };

    private static Plotly.Blazor.Layout Layout(string title, string x, string y, bool logX = false) => new()
    {
        Title = new Title { Text = title },
        Margin = new Margin { L = 64, R = 16, T = 48, B = 48 },
        XAxis = [new XAxis { Title = new Plotly.Blazor.LayoutLib.XAxisLib.Title { Text = x }, Type = logX ? Plotly.Blazor.LayoutLib.XAxisLib.TypeEnum.Log : Plotly.Blazor.LayoutLib.XAxisLib.TypeEnum.Linear }],
        YAxis = [new YAxis { Title = new Plotly.Blazor.LayoutLib.YAxisLib.Title { Text = y } }],
        ShowLegend = true,
    };
}
