using System.Net.Sockets;

namespace Pipeline.Jobs.Engine;

/// <summary>
/// Tells an unreachable artifact store (no answer, a connection refused or reset, a timeout, a 5xx) from every other
/// failure: the first is retried by the engine a bounded number of times, the second is the stage's own error.
/// </summary>
public static class StoreOutage
{
    /// <summary>How the automatic retries start their reason in the stage's history (they are counted by it).</summary>
    public const string ReasonPrefix = "artifact store unreachable";

    public static bool IsUnreachable(Exception e) => Causes(e).Any(c => c switch
    {
        Azure.RequestFailedException r => r.Status is 0 or 408 or >= 500,
        HttpRequestException or SocketException or TimeoutException => true,
        _ => false,
    });

    /// <summary>The innermost message that says what went wrong, e.g. "Connection refused (127.0.0.1:10000)".</summary>
    public static string Describe(Exception e)
    {
        var cause = Causes(e).LastOrDefault(c => c is SocketException or HttpRequestException or TimeoutException or Azure.RequestFailedException) ?? e;
        return cause.Message.Split('\n', 2)[0].Trim();
    }

    private static IEnumerable<Exception> Causes(Exception e)
    {
        var pending = new Stack<Exception>([e]);
        for (var seen = 0; pending.TryPop(out var c) && seen < 64; seen++)
        {
            yield return c;
            if (c is AggregateException a) foreach (var inner in a.InnerExceptions) pending.Push(inner);
            else if (c.InnerException is { } inner) pending.Push(inner);
        }
    }
}
