using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Mediator;
using Microsoft.Extensions.Logging;
using Pipeline.Stages.Artifacts;
using Pipeline.Stages.Execution;

namespace Pipeline.Stages.Diagnostics;

/// <summary>
/// A diagnostic stage that exercises a deployment's engine without any science: it reads and verifies every input
/// artifact, works for a given time while reporting progress, optionally fails its first attempts, and writes a
/// small deterministic output. Operators use it (presets/probe-dag.json) to check workers, queues, fan-out/fan-in,
/// retries and cancellation on a new cluster; the engine's tests use it for the same reason.
/// With <c>objective</c> it is also a stand-in search trial: it "trains" for <c>steps</c> steps along a curve rising
/// linearly to <c>objective</c>, reports at the rungs of a pruning search, and ends with the objective in its summary.
/// </summary>
public sealed record ProbeParams(double Seconds = 0, int FailAttempts = 0, int PayloadBytes = 1024, string? Note = null, double? Objective = null, int Steps = 0) : IStageParams
{
    public IEnumerable<ValidationError> Validate()
    {
        if (Objective is { } o && !double.IsFinite(o)) yield return new("objective", "must be a finite number");
        if (Steps is < 0 or > 1_000_000) yield return new("steps", "must be between 0 and 1000000");
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

        if (p.Steps > 0) await StepAsync(p, ctx, cancellationToken);
        else await WaitAsync(TimeSpan.FromSeconds(p.Seconds), ctx.Progress, cancellationToken);
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
        if (p.Objective is { } objective) report["objective"] = objective;
        await ctx.WriteJsonAsync("probe.json", report, cancellationToken);
        var summary = new JsonObject { ["inputs"] = inputs.Count };
        if (p.Objective is { } value) summary["objective"] = value;
        return new StageResult(ctx.Outputs, summary);
    }

    private static async Task WaitAsync(TimeSpan total, IStageProgress progress, CancellationToken ct)
    {
        var started = DateTime.UtcNow;
        while (DateTime.UtcNow - started < total)
        {
            var done = (DateTime.UtcNow - started) / total;
            progress.Report(done, $"probing {done:P0}");
            await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(200, total.TotalMilliseconds)), ct);
        }
    }

    /// <summary>Steps 1 … steps, <c>seconds</c> spread over them; at a rung the value so far (objective · step / steps) is judged.</summary>
    private static async Task StepAsync(ProbeParams p, StageContext ctx, CancellationToken ct)
    {
        var perStep = TimeSpan.FromSeconds(p.Seconds / p.Steps);
        for (long step = 1; step <= p.Steps; step++)
        {
            if (perStep > TimeSpan.Zero) await Task.Delay(perStep, ct);
            ctx.Progress.Report((double)step / p.Steps, $"step {step}/{p.Steps}");
            // A metric and a log line per step, like a training stage's: what the dashboard's live charts and log show.
            ctx.Progress.Metric("curve", (p.Objective ?? 1) * step / p.Steps, step);
            ctx.Logger.LogInformation("Probe {Stage} step {Step}/{Steps}", ctx.StageName, step, p.Steps);
            if (ctx.Pruning is not { } pruning || !pruning.Rungs.Contains(step) || p.Objective is not { } objective) continue;
            var value = objective * step / p.Steps;
            ctx.Progress.Metric("objective", value, step);
            if (!await pruning.ShouldContinueAsync(step, value, ct))
                throw new TrialPrunedException(step, value, new JsonObject { ["objective"] = value, ["step"] = step });
        }
    }
}
