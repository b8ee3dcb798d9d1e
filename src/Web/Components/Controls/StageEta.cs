using System.Globalization;
using System.Text.RegularExpressions;
using Pipeline.Jobs.Runs;
using Pipeline.Jobs.RunStore;

namespace Pipeline.Web.Components.Controls;

/// <summary>
/// How long a running stage has left: the ETA the stage itself wrote in its progress message ("…, ETA 00:12:05"), else
/// the time so far scaled by the fraction still to do. Null when neither can be known (not running, no progress yet).
/// </summary>
public static partial class StageEta
{
    [GeneratedRegex(@"ETA (\d+):(\d{2}):(\d{2})")]
    private static partial Regex Written();

    public static TimeSpan? Of(StageDetail stage, DateTime nowUtc)
    {
        if (stage.Status != StageStatus.Running) return null;
        if (stage.ProgressMessage is { } message && Written().Match(message) is { Success: true } m)
        {
            return new TimeSpan(int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture),
                int.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture));
        }
        if (stage.StartedAt is not { } started || stage.Progress is <= 0 or >= 1) return null;
        var elapsed = nowUtc - started;
        return elapsed < TimeSpan.Zero ? null : TimeSpan.FromSeconds(elapsed.TotalSeconds / stage.Progress * (1 - stage.Progress));
    }
}
