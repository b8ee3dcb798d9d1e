using MudBlazor.Services;
using Pipeline.Web.Access;

namespace Pipeline.Web.Components;

/// <summary>
/// The dashboard: Blazor components rendered on the server (interactive over a SignalR circuit), MudBlazor controls and
/// Plotly charts. Every page needs <see cref="AccessPolicies.ReadRuns"/>; controls that change runs check
/// <see cref="AccessPolicies.OperateRuns"/> again in their handlers.
/// </summary>
public static class DashboardExtensions
{
    public static IServiceCollection AddDashboard(this IServiceCollection services)
    {
        services.AddRazorComponents().AddInteractiveServerComponents();
        services.AddCascadingAuthenticationState();
        services.AddMudServices();
        services.AddScoped<Controls.OperatorGate>();
        return services;
    }

    public static WebApplication MapDashboard(this WebApplication app)
    {
        app.UseAntiforgery();
        app.MapStaticAssets();
        app.MapRazorComponents<App>()
            .AddInteractiveServerRenderMode()
            .RequireAuthorization(AccessPolicies.ReadRuns);
        return app;
    }
}
