using System.Text.Json.Nodes;

namespace Pipeline.Jobs.Search;

/// <summary>
/// Independent uniform draws per parameter: a choice uniformly over its values, uniform on [low, high], log_uniform
/// uniform in log space, int uniformly over low, low + step, …, high. The n-th proposal (n = trials in the history plus
/// running ones) has its own stream, so parallel proposals differ and a replay gives the same points.
/// </summary>
public sealed class RandomSampler : ISampler
{
    private readonly SearchSpace _space;
    private readonly int _seed;

    public RandomSampler(SearchSpace space, int seed)
    {
        space.EnsureValid();
        (_space, _seed) = (space, seed);
    }

    public Assignment? Propose(IReadOnlyList<Trial> history, IReadOnlyList<Assignment> running)
    {
        var rng = SeedStreams.For(_seed, history.Count + running.Count);
        var assignment = new Assignment();
        foreach (var path in _space.DecisionOrder())
            if (_space.IsActive(path, assignment)) assignment[path] = Draw(_space[path], rng);
        return assignment;
    }

    internal static JsonNode Draw(SearchParameter p, Random rng) => p.Kind switch
    {
        ParameterKind.Choice => p.Values[rng.Next(p.Values.Count)].DeepClone(),
        ParameterKind.Uniform => JsonValue.Create(p.Low!.Value + rng.NextDouble() * (p.High!.Value - p.Low.Value)),
        ParameterKind.LogUniform => JsonValue.Create(Math.Clamp(
            Math.Exp(Math.Log(p.Low!.Value) + rng.NextDouble() * (Math.Log(p.High!.Value) - Math.Log(p.Low.Value))), p.Low.Value, p.High.Value)),
        ParameterKind.Int => JsonValue.Create((long)p.Low!.Value + (long)(p.Step ?? 1) * rng.NextInt64(IntSteps(p) + 1)),
        _ => throw new ArgumentOutOfRangeException(nameof(p), p.Kind, null),
    };

    /// <summary>How many steps lie between an int parameter's low and high.</summary>
    internal static long IntSteps(SearchParameter p) => ((long)p.High!.Value - (long)p.Low!.Value) / (p.Step ?? 1);
}
