using TorchSharp;
using Pipeline.Stages.Execution;
using static TorchSharp.torch;

namespace Pipeline.Stages.Models;

/// <summary>Builds any model of the library from its spec, solving the parameter-matched controls first.</summary>
public static class ModelFactory
{
    /// <summary>Matched controls get a parameter count within this fraction of their target's.</summary>
    public const double MatchTolerance = 0.05;

    public static IVisionModel Create(string preset, int? inputSize = null, int? classes = null, double? width = null) =>
        Create(ModelPresets.Load(preset, inputSize, classes, width));

    public static IVisionModel Create(ModelSpec spec)
    {
        spec = Resolve(spec);
        IVisionModel model = spec.Family == ModelFamily.Resnet ? new ResNetModel(spec) : new ConvRnnModel(spec);
        if (spec.Init.Kind == InitKind.VarianceScaling) VarianceScaling(model.Module, spec.Init.Scale);
        return model;
    }

    /// <summary>TensorFlow's <c>VarianceScaling(scale, fan_in, truncated_normal)</c>: the normal is cut at ±2σ, so σ is
    /// divided by the truncated distribution's std (0.8796) to keep the variance at scale / fan_in.</summary>
    private static void VarianceScaling(nn.Module module, double scale)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        foreach (var (name, p) in module.named_parameters())
        {
            if (p.dim() >= 2)
            {
                var (fanIn, _) = nn.init.CalculateFanInAndFanOut(p);
                var std = Math.Sqrt(scale / fanIn) / 0.87962566103423978;
                p.copy_(HeldScalars.Times(TruncatedNormal(p.shape), std));
            }
            else if (name.EndsWith("bias", StringComparison.Ordinal))
            {
                nn.init.zeros_(p);
            }
        }
    }

    /// <summary>Validates the spec and, for a matched control, returns it with the solved width or extra layers.</summary>
    public static ModelSpec Resolve(ModelSpec spec)
    {
        var errors = spec.Validate().ToList();
        if (errors.Count > 0) throw new ModelSpecException(errors);
        if (spec.Match is not { } match) return spec;

        var target = ModelPresets.Load(match.Target, spec.InputSize, spec.Classes, spec.Width);
        if (target.Match is not null) throw new ModelSpecException([new ValidationError("match.target", $"'{match.Target}' is itself a matched control; match a model")]);
        var goal = CountParameters(target);
        var solved = match.By == MatchBy.Width ? SolveWidth(spec, goal) : SolveDepth(spec, goal);
        var got = CountParameters(solved);
        if (Math.Abs(got - goal) > MatchTolerance * goal)
        {
            throw new ModelSpecException([new ValidationError("match", $"could not match {match.Target}'s {goal:N0} parameters within {MatchTolerance:P0} by {match.By.ToString().ToLowerInvariant()} (best: {got:N0}); try the other 'by'")]);
        }
        return solved with
        {
            Match = null,
            Description = $"{spec.Description} Solved: {got:N0} parameters vs {match.Target}'s {goal:N0} ({(got - goal) / (double)goal:+0.0%;-0.0%}).",
        };
    }

    public static long CountParameters(ModelSpec spec)
    {
        using var model = Create(spec with { Match = null, Init = new InitSpec() }); // counting needs no initialisation
        return ModelStats.Parameters(model.Module);
    }

    /// <summary>Bisection on one width factor over every layer (parameters grow monotonically with width).</summary>
    private static ModelSpec SolveWidth(ModelSpec spec, long goal)
    {
        double lo = 0.05, hi = 16 / spec.Width;
        var best = spec with { Match = null };
        var bestCount = CountParameters(best);
        for (var i = 0; i < 40 && hi - lo > 1e-4; i++)
        {
            var mid = (lo + hi) / 2;
            var candidate = spec with { Match = null, Width = spec.Width * mid };
            var count = CountParameters(candidate);
            if (Math.Abs(count - goal) < Math.Abs(bestCount - goal)) (best, bestCount) = (candidate, count);
            if (count < goal) lo = mid;
            else hi = mid;
        }
        return best;
    }

    /// <summary>
    /// Adds 3×3 conv layers (the channels of the layer before them, no pooling) after the cell-bearing stages
    /// conv3–conv5 of the shallow layout — largest first — while they fit in the remaining parameter budget.
    /// </summary>
    private static ModelSpec SolveDepth(ModelSpec spec, long goal)
    {
        var layers = spec.Layers.ToList();
        var stages = layers.Skip(Math.Max(0, layers.Count - 3)).ToList();
        var extras = stages.ToDictionary(l => l.Name, _ => 0);
        var costs = stages.ToDictionary(l => l.Name, l => ExtraLayerCost(ConvRnnModel.Scale(l.Out, spec.Width)));
        var remaining = goal - CountParameters(spec with { Match = null });
        foreach (var stage in stages.OrderByDescending(s => costs[s.Name]))
        {
            while (remaining - (costs[stage.Name] / 2) > 0)
            {
                extras[stage.Name]++;
                remaining -= costs[stage.Name];
            }
        }
        var deep = new List<LayerSpec>();
        foreach (var l in layers)
        {
            deep.Add(l);
            for (var k = 1; k <= extras.GetValueOrDefault(l.Name); k++)
            {
                deep.Add(new LayerSpec { Name = $"{l.Name}_extra{k}", Out = l.Out, Kernel = 3 });
            }
        }
        return spec with { Match = null, Layers = deep };
    }

    /// <summary>A standard normal cut at ±2 by redrawing what falls outside (TorchSharp 0.107's <c>trunc_normal_</c>
    /// returned near-constant values here).</summary>
    private static Tensor TruncatedNormal(long[] shape)
    {
        var x = randn(shape);
        for (var i = 0; i < 100; i++)
        {
            var outside = HeldScalars.Greater(x.abs(), 2);
            if (!outside.any().ToBoolean()) break;
            x = where(outside, randn(shape), x);
        }
        return HeldScalars.Clamp(x, -2, 2);
    }

    private static long ExtraLayerCost(long channels) => (9 * channels * channels) + channels;
}
