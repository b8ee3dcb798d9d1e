using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Pipeline.Jobs.Engine;

/// <summary>
/// A hosted service that runs one pass at start-up and then every <see cref="Interval"/> until the host stops. A failed
/// pass is logged and tried again at the next interval: a database that is briefly away must not stop the process.
/// </summary>
public abstract class PeriodicPass(ILogger log) : BackgroundService
{
    protected ILogger Log { get; } = log;

    protected abstract TimeSpan Interval { get; }

    /// <summary>What a pass does, for the warning when one fails ("Reconciliation pass").</summary>
    protected abstract string PassName { get; }

    protected abstract Task PassAsync(CancellationToken ct);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await PassAsync(stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                Log.LogWarning(e, "{Pass} failed; trying again in {Interval}", PassName, Interval);
            }
            try
            {
                await Task.Delay(Interval, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }
}
