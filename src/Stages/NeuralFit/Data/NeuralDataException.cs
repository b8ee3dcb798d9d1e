namespace Pipeline.Stages.NeuralFit;

/// <summary>Neural data that cannot be used as it is: the message names the file and the offending ids.</summary>
public sealed class NeuralDataException(string message) : Exception(message)
{
    /// <summary>At most <paramref name="max"/> ids, then "and N more" — enough to find the problem, short enough to read.</summary>
    public static string ListIds(IEnumerable<string> ids, int max = 10)
    {
        var all = ids.ToList();
        var shown = string.Join(", ", all.Take(max));
        return all.Count > max ? $"{shown} and {all.Count - max} more" : shown;
    }
}
