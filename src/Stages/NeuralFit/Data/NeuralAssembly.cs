using static TorchSharp.torch;

namespace Pipeline.Stages.NeuralFit;

/// <summary>One row of the presentation axis: which image was shown, which repetition, and its object label.</summary>
public sealed record Presentation(string StimulusId, int Repetition, string ObjectName);

/// <summary>One recording site (Brain-Score's "neuroid") and the area it was recorded in.</summary>
public sealed record Neuroid(string NeuroidId, string Region);

/// <summary>A time bin [StartMs, EndMs) relative to image onset.</summary>
public sealed record TimeBin(int StartMs, int EndMs);

/// <summary>
/// Neural responses as Brain-Score holds them: float32 <c>[presentation, neuroid, time_bin]</c> with per-axis coordinates
/// (CONVRNN.md "Neural fitting"). Pure data: readers and writers live next to it; nothing here touches files.
/// </summary>
public sealed class NeuralAssembly
{
    /// <summary>The areas a site may belong to. IT covers its posterior/central/anterior sub-regions.</summary>
    public static readonly IReadOnlyList<string> KnownRegions = ["V4", "IT", "pIT", "cIT", "aIT"];

    private static readonly string[] ItSubRegions = ["pIT", "cIT", "aIT"];

    public NeuralAssembly(float[] responses, IReadOnlyList<Presentation> presentations, IReadOnlyList<Neuroid> neuroids, IReadOnlyList<TimeBin> timeBins)
    {
        var expected = (long)presentations.Count * neuroids.Count * timeBins.Count;
        if (responses.LongLength != expected)
        {
            throw new ArgumentException($"responses hold {responses.LongLength} values but the coordinates describe {presentations.Count} × {neuroids.Count} × {timeBins.Count} = {expected}", nameof(responses));
        }
        (Responses, Presentations, Neuroids, TimeBins) = (responses, presentations, neuroids, timeBins);
    }

    /// <summary>Row-major <c>[presentation, neuroid, time_bin]</c>.</summary>
    public float[] Responses { get; }
    public IReadOnlyList<Presentation> Presentations { get; }
    public IReadOnlyList<Neuroid> Neuroids { get; }
    public IReadOnlyList<TimeBin> TimeBins { get; }

    public float this[int presentation, int neuroid, int bin] =>
        Responses[((long)presentation * Neuroids.Count + neuroid) * TimeBins.Count + bin];

    /// <summary>Stimulus ids in order of first presentation.</summary>
    public IReadOnlyList<string> StimulusIds => [.. Presentations.Select(p => p.StimulusId).Distinct(StringComparer.Ordinal)];

    /// <summary>The object label of each stimulus, in <see cref="StimulusIds"/> order.</summary>
    public IReadOnlyList<string> StimulusObjects
    {
        get
        {
            var first = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var p in Presentations) first.TryAdd(p.StimulusId, p.ObjectName);
            return [.. StimulusIds.Select(id => first[id])];
        }
    }

    /// <summary>Number of presentations of each stimulus, in <see cref="StimulusIds"/> order.</summary>
    public IReadOnlyList<int> RepetitionCounts
    {
        get
        {
            var counts = Presentations.GroupBy(p => p.StimulusId, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
            return [.. StimulusIds.Select(id => counts[id])];
        }
    }

    /// <summary>Float32 <c>[presentation, neuroid, time_bin]</c>.</summary>
    public Tensor ResponsesTensor() => tensor(Responses, [Presentations.Count, Neuroids.Count, TimeBins.Count]);

    /// <summary>Repetition-averaged responses, float32 <c>[stimulus, neuroid, time_bin]</c> in <see cref="StimulusIds"/> order.</summary>
    public Tensor AveragedResponses()
    {
        var ids = StimulusIds;
        var index = ids.Select((id, i) => (id, i)).ToDictionary(x => x.id, x => x.i, StringComparer.Ordinal);
        var width = Neuroids.Count * TimeBins.Count;
        var sums = new double[ids.Count * width];
        var counts = new int[ids.Count];
        for (var p = 0; p < Presentations.Count; p++)
        {
            var s = index[Presentations[p].StimulusId];
            counts[s]++;
            for (var j = 0; j < width; j++) sums[(s * width) + j] += Responses[((long)p * width) + j];
        }
        var mean = new float[sums.Length];
        for (var i = 0; i < mean.Length; i++) mean[i] = (float)(sums[i] / counts[i / width]);
        return tensor(mean, [ids.Count, Neuroids.Count, TimeBins.Count]);
    }

    /// <summary>
    /// Float32 <c>[repetition, stimulus, neuroid, time_bin]</c>: the r-th presentation of each stimulus (ordered by its
    /// repetition coordinate) in slot r. Needs the same repetition count for every stimulus (split-half reliability
    /// splits this axis).
    /// </summary>
    public Tensor Repetitions()
    {
        var ids = StimulusIds;
        var groups = Enumerable.Range(0, Presentations.Count)
            .GroupBy(p => Presentations[p].StimulusId, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.OrderBy(p => Presentations[p].Repetition).ToArray(), StringComparer.Ordinal);
        var reps = groups.Values.Select(g => g.Length).Distinct().ToArray();
        if (reps.Length != 1)
        {
            var byCount = groups.GroupBy(g => g.Value.Length).OrderBy(g => g.Key).Select(g => $"{g.Key} repetitions: {NeuralDataException.ListIds(g.Select(x => x.Key))}");
            throw new NeuralDataException("Stimuli have different repetition counts; a [repetition, stimulus, …] tensor needs equal counts.\n  " + string.Join("\n  ", byCount));
        }
        var r = reps[0];
        var width = Neuroids.Count * TimeBins.Count;
        var result = new float[(long)r * ids.Count * width];
        for (var s = 0; s < ids.Count; s++)
        {
            var rows = groups[ids[s]];
            for (var k = 0; k < r; k++)
            {
                Array.Copy(Responses, (long)rows[k] * width, result, (((long)k * ids.Count) + s) * width, width);
            }
        }
        return tensor(result, [r, ids.Count, Neuroids.Count, TimeBins.Count]);
    }

    /// <summary>Indices of the sites recorded in <paramref name="region"/>; "IT" includes pIT, cIT and aIT.</summary>
    public int[] SitesOf(string region)
    {
        bool InRegion(string r) => r == region || (region == "IT" && ItSubRegions.Contains(r));
        return [.. Enumerable.Range(0, Neuroids.Count).Where(i => InRegion(Neuroids[i].Region))];
    }
}
