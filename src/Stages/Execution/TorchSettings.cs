using Nito.AsyncEx;
using TorchSharp;

namespace Pipeline.Stages.Execution;

/// <summary>The one rule for <see cref="ITorchStageParams"/>, and the one place a stage's libtorch thread count is set.</summary>
/// <remarks>
/// libtorch's CPU thread count belongs to an OS thread, not to the process: <c>set_num_threads</c> changes the OpenMP
/// setting of the calling thread (and the default a thread picks up on its first torch op), and after an ordinary
/// <c>await</c> a handler continues on whichever pool thread is free, with whatever count that thread was given before
/// (measured with TorchSharp 0.107). So each torch stage runs on its own OS thread that keeps every continuation
/// (Nito's <see cref="AsyncContextThread"/>, a single-threaded async context), with its count set on that thread first.
/// Two torch stages in one worker process (<c>--workers 2</c>) then each compute with their own count; neither can
/// change the other's. Work a stage hands to other threads (the batch loader's decoding) does no torch ops.
/// </remarks>
public static class TorchSettings
{
    public static IEnumerable<ValidationError> Validate(ITorchStageParams p)
    {
        if (p.Device is not ("auto" or "cpu" or "cuda")) yield return new("device", $"must be 'auto', 'cpu' or 'cuda'; got '{p.Device}'.");
        if (p.Threads is < 1 or > 256) yield return new("threads", $"must be between 1 and 256 (or null for every core); got {p.Threads}.");
    }

    /// <summary>The thread count a stage computes with: its <c>threads</c>, or every core.</summary>
    public static int ThreadsFor(ITorchStageParams p) => p.Threads ?? Environment.ProcessorCount;

    /// <summary>
    /// Runs a torch stage's body on a thread of its own with the stage's thread count; every continuation of
    /// <paramref name="body"/> stays on that thread. The engine calls this for every <see cref="ITorchStageParams"/>
    /// stage; handlers never set threads themselves.
    /// </summary>
    public static Task<T> RunOnOwnThreadAsync<T>(ITorchStageParams p, Func<Task<T>> body) => RunOnOwnThreadAsync(ThreadsFor(p), body);

    /// <summary>Runs <paramref name="body"/> on a thread of its own computing with <paramref name="threads"/> (also for
    /// tests whose results must not depend on which pool thread an <c>await</c> resumes on).</summary>
    public static async Task<T> RunOnOwnThreadAsync<T>(int threads, Func<Task<T>> body)
    {
        var thread = new AsyncContextThread();
        try
        {
            return await thread.Factory.Run(() =>
            {
                // A thread takes libtorch's process-wide default on its first torch op (a lazy, thread-local init), and
                // another stage may change that default in between: initialise this thread first, then set its own count.
                _ = torch.get_num_threads();
                torch.set_num_threads(threads);
                return body();
            });
        }
        finally
        {
            await thread.JoinAsync();
        }
    }
}
