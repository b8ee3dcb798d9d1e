using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Mediator;
using Pipeline.Stages.Artifacts;
using Pipeline.Stages.Execution;

namespace Pipeline.Stages.Diagnostics;

/// <summary>
/// A diagnostic stage that exercises a deployment's engine without any science: it reads and verifies every input
/// artifact, works for a given time while reporting progress, optionally fails its first attempts, and writes a
/// small deterministic output. Operators use it (presets/probe-dag.json) to check workers, queues, fan-out/fan-in,
/// retries and cancellation on a new cluster; the engine's tests use it for the same reason.
/// </summary>
public sealed record ProbeParams(double Seconds = 0, int FailAttempts = 0, int PayloadBytes = 1024, string? Note = null) : IStageParams
{
    public IEnumerable<ValidationError> Validate()
    {
        if (Seconds is < 0 or > 86_400) yield return new("seconds", "must be between 0 and 86400");
        if (FailAttempts is < 0 or > 100) yield return new("fail_attempts", "must be between 0 and 100");
        if (PayloadBytes is < 0 or > 1 << 30) yield return new("payload_bytes", "must be between 0 and 1073741824");
    }
}

[Stage("probe", StageQueues.Default, 1)]
public sealed record ProbeStage(ProbeParams Params, StageContext Context) : IStageRequest<ProbeParams>;

public sealed class ProbeHandler : IRequestHandler<ProbeStage, StageResult>
{
    public async ValueTask<StageResult> Handle(ProbeStage request, CancellationToken cancellationToken)
    {
        var (p, ctx) = (request.Params, request.Context);
        var inputs = new JsonArray();
        foreach (var artifact in ctx.Inputs.Values.SelectMany(a => a))
        {
            await using var s = await ctx.Store.OpenReadAsync(artifact.Path, artifact.Sha256, cancellationToken);
            await s.CopyToAsync(Stream.Null, cancellationToken);
            inputs.Add(new JsonObject { ["path"] = artifact.Path, ["sha256"] = artifact.Sha256 });
        }

        var total = TimeSpan.FromSeconds(p.Seconds);
        var started = DateTime.UtcNow;
        while (DateTime.UtcNow - started < total)
        {
            var done = (DateTime.UtcNow - started) / total;
            ctx.Progress.Report(done, $"probing {done:P0}");
            await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(200, total.TotalMilliseconds)), cancellationToken);
        }
        if (ctx.Attempt <= p.FailAttempts)
        {
            throw new InvalidOperationException($"probe '{ctx.StageName}' is configured to fail its first {p.FailAttempts} attempt(s); this was attempt {ctx.Attempt}.");
        }

        var payload = new byte[p.PayloadBytes];
        new Random(p.PayloadBytes).NextBytes(payload);
        using (var ms = new MemoryStream(payload)) await ctx.WriteOutputAsync("payload.bin", ms, cancellationToken);

        var report = new JsonObject
        {
            ["stage"] = ctx.StageName,
            ["note"] = p.Note,
            ["inputs"] = inputs,
            ["payload_sha256"] = Convert.ToHexStringLower(SHA256.HashData(payload)),
        };
        await ctx.WriteJsonAsync("probe.json", report, cancellationToken);
        return new StageResult(ctx.Outputs, new JsonObject { ["inputs"] = inputs.Count });
    }
}
