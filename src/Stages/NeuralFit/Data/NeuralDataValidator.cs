namespace Pipeline.Stages.NeuralFit;

/// <summary>
/// What a neural-fit needs of its data, checked before anything is computed or written: finite responses, at least
/// two repetitions per stimulus (the split-half ceiling), known regions, and exactly one image per stimulus.
/// </summary>
public static class NeuralDataValidator
{
    /// <summary>Throws one <see cref="NeuralDataException"/> listing every problem found (ids capped per problem).</summary>
    public static void Validate(NeuralAssembly assembly, string source, StimulusImages? images = null)
    {
        var problems = Problems(assembly, images).ToList();
        if (problems.Count > 0) throw new NeuralDataException($"{source}: the neural data cannot be used:\n  " + string.Join("\n  ", problems));
    }

    public static IEnumerable<string> Problems(NeuralAssembly assembly, StimulusImages? images)
    {
        var nonFinite = new List<string>();
        var (n, t) = (assembly.Neuroids.Count, assembly.TimeBins.Count);
        for (long i = 0; i < assembly.Responses.LongLength; i++)
        {
            if (float.IsFinite(assembly.Responses[i])) continue;
            var p = (int)(i / (n * t));
            var site = (int)(i / t % n);
            var bin = assembly.TimeBins[(int)(i % t)];
            var value = assembly.Responses[i];
            nonFinite.Add($"{assembly.Presentations[p].StimulusId}/{assembly.Neuroids[site].NeuroidId}/{bin.StartMs}-{bin.EndMs}ms ({(float.IsNaN(value) ? "NaN" : value > 0 ? "+inf" : "-inf")})");
        }
        if (nonFinite.Count > 0) yield return $"{nonFinite.Count} responses are NaN or infinite (stimulus/neuroid/bin): {NeuralDataException.ListIds(nonFinite)}";

        var ids = assembly.StimulusIds;
        var counts = assembly.RepetitionCounts;
        var few = ids.Where((_, i) => counts[i] < 2).ToList();
        if (few.Count > 0) yield return $"{few.Count} stimuli have fewer than two repetitions (the split-half ceiling needs two): {NeuralDataException.ListIds(few)}";

        var unknown = assembly.Neuroids.Where(s => !NeuralAssembly.KnownRegions.Contains(s.Region, StringComparer.Ordinal)).ToList();
        if (unknown.Count > 0)
        {
            yield return $"{unknown.Count} neuroids have an unknown region (allowed: {string.Join(", ", NeuralAssembly.KnownRegions)}): " +
                NeuralDataException.ListIds(unknown.Select(s => $"{s.NeuroidId} ({s.Region})"));
        }

        var duplicates = assembly.Presentations.GroupBy(p => (p.StimulusId, p.Repetition)).Where(g => g.Count() > 1).Select(g => $"{g.Key.StimulusId} repetition {g.Key.Repetition}").ToList();
        if (duplicates.Count > 0) yield return $"{duplicates.Count} presentations repeat a (stimulus_id, repetition) pair: {NeuralDataException.ListIds(duplicates)}";
        var dupSites = assembly.Neuroids.GroupBy(s => s.NeuroidId, StringComparer.Ordinal).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        if (dupSites.Count > 0) yield return $"{dupSites.Count} neuroid ids are used twice: {NeuralDataException.ListIds(dupSites)}";

        if (images is null) yield break;
        var missing = ids.Where(id => !images.Contains(id)).ToList();
        if (missing.Count > 0) yield return $"{missing.Count} stimuli have no image in {images.Source}: {NeuralDataException.ListIds(missing)}";
        var known = ids.ToHashSet(StringComparer.Ordinal);
        var extra = images.Ids.Where(id => !known.Contains(id)).Order(StringComparer.Ordinal).ToList();
        if (extra.Count > 0) yield return $"{extra.Count} images in {images.Source} have no responses: {NeuralDataException.ListIds(extra)}";
    }
}
