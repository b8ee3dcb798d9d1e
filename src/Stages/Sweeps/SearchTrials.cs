using System.Text.Json;
using System.Text.Json.Nodes;
using Pipeline.Stages.Artifacts;

namespace Pipeline.Stages.Sweeps;

/// <summary>
/// <c>trials.json</c>, the one output of a <c>search</c> stage: what the search was and every trial it ran, from the run
/// store (the engine writes it when the search ends). The <c>leaderboard</c> stage renders it; each trial lists its
/// stages' artifacts, so the leaderboard reads a trial's metrics and model spec from the store, sha256-checked.
/// </summary>
public sealed record SearchTrials
{
    public const string FileName = "trials.json";

    /// <summary>The search stage's name in the RunSpec.</summary>
    public required string Search { get; init; }
    public required string Strategy { get; init; }
    public int Seed { get; init; }
    public int Budget { get; init; }
    public int Parallel { get; init; }
    public required SearchObjective Objective { get; init; }

    /// <summary>The searched space as written in the RunSpec: path → parameter (kind, values or low/high, when).</summary>
    public required JsonObject Space { get; init; }
    public required IReadOnlyList<SearchTrialRecord> Trials { get; init; }

    public static async Task<SearchTrials> ReadAsync(IArtifactStore store, ArtifactInfo info, CancellationToken ct)
    {
        // Read whole, and so sha256-checked, before parsing: damaged bytes are then reported as corruption (which the
        // engine answers by re-running the search), not as malformed JSON.
        using var bytes = new MemoryStream();
        await using (var stream = await store.OpenReadAsync(info.Path, info.Sha256, ct))
            await stream.CopyToAsync(bytes, ct);
        bytes.Position = 0;
        return await JsonSerializer.DeserializeAsync<SearchTrials>(bytes, PipelineJson.Options, ct)
            ?? throw new JsonException($"{info.Path} is empty");
    }
}

/// <summary>What a search optimises: <see cref="Metric"/>, a summary field of the trial stage <see cref="Of"/> (<c>train</c> or <c>sweep</c>).</summary>
public sealed record SearchObjective
{
    public string Of { get; init; } = "train";
    public string Metric { get; init; } = "top1";

    /// <summary><c>maximize</c> or <c>minimize</c>.</summary>
    public string Direction { get; init; } = "maximize";

    public bool Maximize => Direction == "maximize";
}

/// <summary>
/// One trial. <see cref="Status"/>: <c>completed</c>, <c>failed</c>, <c>pruned</c> (stopped at the rung
/// <see cref="PrunedAtStep"/> by successive halving, <see cref="Objective"/> then being its value there) or
/// <c>cancelled</c>. <see cref="Order"/>: the position in which its result arrived (what the sampler saw).
/// </summary>
public sealed record SearchTrialRecord
{
    public int Number { get; init; }
    public required string Status { get; init; }

    /// <summary>The active parameters' values, path → JSON value, in the space's decision order.</summary>
    public required JsonObject Assignment { get; init; }
    public double? Objective { get; init; }
    public long? PrunedAtStep { get; init; }
    public int? Order { get; init; }
    public string? Error { get; init; }

    /// <summary>Summed over the trial's stages that ran (a cached stage counts the time it took to reuse).</summary>
    public double? WallSeconds { get; init; }
    public required IReadOnlyList<SearchTrialStage> Stages { get; init; }
}

/// <summary>A stage of a trial: <see cref="Role"/> is <c>train</c> (the first) or <c>sweep</c>.</summary>
public sealed record SearchTrialStage
{
    public required string Name { get; init; }
    public required string Role { get; init; }
    public required string Kind { get; init; }

    /// <summary>The stage's status in the run store, lower case (succeeded, cached, pruned, failed, …).</summary>
    public required string Status { get; init; }

    /// <summary>The stage's parameters as it ran them (the trial template with the assignment applied, defaults filled in).</summary>
    public required JsonObject Params { get; init; }
    public JsonObject? Summary { get; init; }
    public IReadOnlyList<ArtifactRef> Artifacts { get; init; } = [];
}

/// <summary>An artifact of a trial stage: its store path, sha256 and size.</summary>
public sealed record ArtifactRef(string Path, string Sha256, long Bytes);
