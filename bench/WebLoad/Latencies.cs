using System.Globalization;

namespace Pipeline.Bench.WebLoad;

/// <summary>The client-side latencies and the errors of one kind of request, as they arrive from many clients.</summary>
public sealed class LatencySeries(string name)
{
    private readonly List<double> _milliseconds = [];
    private readonly Dictionary<string, int> _errors = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    public string Name { get; } = name;

    public void Add(double milliseconds)
    {
        lock (_gate) _milliseconds.Add(milliseconds);
    }

    /// <summary>A request that failed (an HTTP error, a timeout, an answer without what it must show): an error, not a latency.</summary>
    public void Fail(string reason)
    {
        lock (_gate) _errors[reason] = _errors.GetValueOrDefault(reason) + 1;
    }

    public LatencySummary Summarize(TimeSpan window) => Combine(Name, [this], window);

    /// <summary>Several series as one (the "all requests" line).</summary>
    public static LatencySummary Combine(string name, IEnumerable<LatencySeries> series, TimeSpan window)
    {
        var values = new List<double>();
        var errors = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var s in series)
        {
            lock (s._gate)
            {
                values.AddRange(s._milliseconds);
                foreach (var (reason, n) in s._errors) errors[reason] = errors.GetValueOrDefault(reason) + n;
            }
        }
        values.Sort();
        return new LatencySummary(name, values.Count, errors.Values.Sum(), (values.Count + errors.Values.Sum()) / window.TotalSeconds,
            Percentiles.NearestRank(values, 0.50), Percentiles.NearestRank(values, 0.95), Percentiles.NearestRank(values, 0.99),
            values.Count == 0 ? double.NaN : values[^1], errors);
    }
}

/// <summary>One line of the report: successful requests, errors, requests per second (both), latency percentiles in ms.</summary>
public sealed record LatencySummary(string Name, int Count, int Errors, double PerSecond, double P50, double P95, double P99, double Max,
    IReadOnlyDictionary<string, int> ErrorReasons);

public static class Percentiles
{
    /// <summary>
    /// The nearest-rank percentile of values sorted in ascending order (0.5: the median; the smallest value with at least
    /// p of them at or below it), NaN when there is none: the definition `pipeline bench handoff` uses.
    /// </summary>
    public static double NearestRank(IReadOnlyList<double> sorted, double p)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(p, 0);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(p, 1);
        if (sorted.Count == 0) return double.NaN;
        return sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Count) - 1, 0, sorted.Count - 1)];
    }
}

public static class Figures
{
    /// <summary>A value rounded to <paramref name="figures"/> significant figures, written without an exponent: 0.0123, 1.23, 12.3, 123, 1230.</summary>
    public static string Significant(double value, int figures = 3)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(figures, 1);
        if (!double.IsFinite(value)) return "–";
        if (value == 0) return "0";
        var scale = Math.Pow(10, figures - Digits(value));
        var rounded = Math.Round(value * scale) / scale;
        // Rounding can add a digit (9.996 → 10.0): count again for the decimals to write.
        return rounded.ToString("F" + Math.Max(0, figures - Digits(rounded)).ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
    }

    /// <summary>The position of the leading digit: 1 for 1.23, 3 for 123, −1 for 0.0123.</summary>
    private static int Digits(double value) => (int)Math.Floor(Math.Log10(Math.Abs(value))) + 1;
}
