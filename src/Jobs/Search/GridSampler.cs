using System.Text.Json.Nodes;
using Pipeline.Stages.Execution;

namespace Pipeline.Jobs.Search;

/// <summary>
/// Every combination of the parameters' values, once, in a stable order: parameters in decision order, the last one
/// varying fastest (nested loops). A choice takes its values as listed; an int range every value from low to high by
/// step, or <c>grid</c> evenly spaced ones; a uniform or log_uniform range only <c>grid</c> evenly spaced values (log
/// spaced for log_uniform) and is refused without one. An inactive parameter does not multiply the grid. The next
/// proposal is the first point not already in the history (whatever its status) or running; null when none is left.
/// </summary>
public sealed class GridSampler : ISampler
{
    private readonly IReadOnlyList<Assignment> _points;

    public GridSampler(SearchSpace space)
    {
        space.EnsureValid();
        var errors = Validate(space).ToList();
        if (errors.Count > 0) throw new ArgumentException("The space cannot be searched by a grid: " + string.Join("; ", errors));
        _points = Enumerate(space);
    }

    /// <summary>The points in the order they are proposed.</summary>
    public IReadOnlyList<Assignment> Points() => _points;

    public static IEnumerable<ValidationError> Validate(SearchSpace space) =>
        from kv in space
        where kv.Value.Kind is ParameterKind.Uniform or ParameterKind.LogUniform && kv.Value.Grid is null
        select new ValidationError(SearchSpace.Field(kv.Key, "grid"),
            $"a grid search needs a grid count for a {SearchSpace.Name(kv.Value.Kind)} parameter (how many evenly spaced values to try, e.g. \"grid\": 5), or make it a choice");

    public Assignment? Propose(IReadOnlyList<Trial> history, IReadOnlyList<Assignment> running) =>
        _points.FirstOrDefault(p => !history.Any(t => t.Assignment.SameAs(p)) && !running.Any(r => r.SameAs(p)));

    private static List<Assignment> Enumerate(SearchSpace space)
    {
        var order = space.DecisionOrder();
        var points = new List<Assignment>();
        void Expand(int i, Assignment decided)
        {
            if (i == order.Count)
            {
                points.Add(Copy(decided));
                return;
            }
            var path = order[i];
            if (!space.IsActive(path, decided))
            {
                Expand(i + 1, decided);
                return;
            }
            foreach (var value in Values(space[path]))
            {
                decided[path] = value;
                Expand(i + 1, decided);
            }
            decided.Remove(path);
        }
        Expand(0, new Assignment());
        return points;
    }

    private static Assignment Copy(Assignment a)
    {
        var copy = new Assignment();
        foreach (var (path, value) in a) copy[path] = value.DeepClone();
        return copy;
    }

    internal static IEnumerable<JsonNode> Values(SearchParameter p)
    {
        double low = p.Low ?? 0, high = p.High ?? 0;
        int n = p.Grid ?? 0;
        switch (p.Kind)
        {
            case ParameterKind.Choice:
                return p.Values;
            case ParameterKind.Uniform:
                return Enumerable.Range(0, n).Select(i => (JsonNode)JsonValue.Create(i == n - 1 ? high : low + i * (high - low) / (n - 1)));
            case ParameterKind.LogUniform:
                return Enumerable.Range(0, n).Select(i => (JsonNode)JsonValue.Create(
                    i == 0 ? low : i == n - 1 ? high : Math.Exp(Math.Log(low) + i * (Math.Log(high) - Math.Log(low)) / (n - 1))));
            default:
                var step = p.Step ?? 1;
                var steps = RandomSampler.IntSteps(p);
                var indices = p.Grid is null
                    ? Enumerable.Range(0, (int)steps + 1).Select(i => (long)i)
                    : Enumerable.Range(0, n).Select(i => (long)Math.Round(i * (double)steps / (n - 1))).Distinct();
                return indices.Select(k => (JsonNode)JsonValue.Create((long)low + k * step));
        }
    }
}
