using MudBlazor;
using Pipeline.Jobs.RunStore;

namespace Pipeline.Web.Components.Controls;

/// <summary>One colour per state, shared by the status badge and the stage DAG, so a green box and a green badge mean the same.</summary>
public static class StatusColors
{
    public static string Fill(StageStatus status) => status switch
    {
        StageStatus.Pending => "#e0e0e0",
        StageStatus.Queued => "#bbdefb",
        StageStatus.Running => "#64b5f6",
        StageStatus.Succeeded => "#81c784",
        StageStatus.Cached => "#c5e1a5",
        StageStatus.Failed => "#e57373",
        StageStatus.Cancelled => "#ffb74d",
        StageStatus.Blocked => "#bdbdbd",
        StageStatus.Pruned => "#ce93d8",
        _ => "#ffffff",
    };

    public static Color Badge(StageStatus status) => status switch
    {
        StageStatus.Running or StageStatus.Queued => Color.Info,
        StageStatus.Succeeded or StageStatus.Cached => Color.Success,
        StageStatus.Failed => Color.Error,
        StageStatus.Cancelled or StageStatus.Pruned => Color.Warning,
        _ => Color.Default,
    };

    public static Color Badge(RunStatus status) => status switch
    {
        RunStatus.Running => Color.Info,
        RunStatus.Succeeded => Color.Success,
        RunStatus.Failed => Color.Error,
        RunStatus.Cancelled or RunStatus.Interrupted => Color.Warning,
        _ => Color.Default,
    };
}
