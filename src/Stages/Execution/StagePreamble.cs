using System.Reflection;

namespace Pipeline.Stages.Execution;

/// <summary>
/// What runs before every stage's handler, written once: its params are validated (a stage that fails here says its
/// kind and every field), and a torch stage runs on a thread of its own with its thread count
/// (<see cref="TorchSettings.RunOnOwnThreadAsync{T}"/>). Handlers never validate their params or set threads. The
/// engine runs it as a mediator pipeline behaviour; tests that call a handler directly run it through here too.
/// </summary>
public static class StagePreamble
{
    public static async ValueTask<TResponse> RunAsync<TResponse>(IStageRequest<IStageParams> request, Func<ValueTask<TResponse>> handler)
    {
        var errors = request.Params.Validate().ToList();
        if (errors.Count > 0)
        {
            var kind = request.GetType().GetCustomAttribute<StageAttribute>()?.Kind ?? request.GetType().Name;
            throw new StageInputException($"Invalid {kind} params of stage '{request.Context.StageName}': " +
                string.Join("; ", errors.Select(e => $"params.{e.Field}: {e.Message}")));
        }
        if (request.Params is not ITorchStageParams torchParams) return await handler();
        return await TorchSettings.RunOnOwnThreadAsync(torchParams, () => handler().AsTask());
    }
}
