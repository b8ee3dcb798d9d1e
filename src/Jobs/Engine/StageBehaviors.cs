using System.Diagnostics;
using Mediator;
using Microsoft.Extensions.Logging;
using Pipeline.Stages.Execution;

namespace Pipeline.Jobs.Engine;

/// <summary>
/// Wraps every stage request: puts RunId/StageId/StageName/Attempt into the log context for everything the handler
/// logs, logs start and end (through the stage's own logger, so the lines are in its stored log too), reports progress
/// 0 and 1, and records the stage's wall time as a metric.
/// </summary>
public sealed class StageLoggingBehavior<TMessage, TResponse> : IPipelineBehavior<TMessage, TResponse> where TMessage : notnull, IMessage
{
    public async ValueTask<TResponse> Handle(TMessage message, MessageHandlerDelegate<TMessage, TResponse> next, CancellationToken cancellationToken)
    {
        if (message is not IStageRequest { Context: var ctx }) return await next(message, cancellationToken);
        var log = ctx.Logger;
        using var scope = log.BeginScope(new Dictionary<string, object>
        {
            ["RunId"] = ctx.RunId,
            ["StageId"] = ctx.StageId,
            ["StageName"] = ctx.StageName,
            ["Attempt"] = ctx.Attempt,
        });
        var kind = message.GetType().Name;
        log.LogInformation("Stage {StageName} ({Kind}) attempt {Attempt} started", ctx.StageName, kind, ctx.Attempt);
        ctx.Progress.Report(0, "started");
        var clock = Stopwatch.StartNew();
        try
        {
            var response = await next(message, cancellationToken);
            ctx.Progress.Report(1, "done");
            ctx.Progress.Metric("stage.seconds", clock.Elapsed.TotalSeconds);
            log.LogInformation("Stage {StageName} ({Kind}) succeeded in {Seconds:F1} s", ctx.StageName, kind, clock.Elapsed.TotalSeconds);
            return response;
        }
        catch (OperationCanceledException)
        {
            log.LogWarning("Stage {StageName} ({Kind}) stopped after {Seconds:F1} s: cancelled", ctx.StageName, kind, clock.Elapsed.TotalSeconds);
            throw;
        }
        catch (TrialPrunedException e)
        {
            log.LogInformation("Stage {StageName} ({Kind}) pruned after {Seconds:F1} s at step {Step}", ctx.StageName, kind, clock.Elapsed.TotalSeconds, e.Step);
            throw;
        }
        catch (Exception e)
        {
            log.LogError("Stage {StageName} ({Kind}) failed after {Seconds:F1} s: {Error}", ctx.StageName, kind, clock.Elapsed.TotalSeconds, e.Message);
            throw;
        }
    }
}

/// <summary>The stage preamble (<see cref="StagePreamble"/>) as a mediator pipeline behaviour, for every stage.</summary>
public sealed class StagePreambleBehavior<TMessage, TResponse> : IPipelineBehavior<TMessage, TResponse> where TMessage : notnull, IMessage
{
    public ValueTask<TResponse> Handle(TMessage message, MessageHandlerDelegate<TMessage, TResponse> next, CancellationToken cancellationToken) =>
        message is IStageRequest<IStageParams> request
            ? StagePreamble.RunAsync(request, () => next(message, cancellationToken))
            : next(message, cancellationToken);
}
