using Microsoft.AspNetCore.Hosting.StaticWebAssets;
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
        // Run from a build output (`dotnet run`, no launch profile: Production), the packages' assets (MudBlazor, Plotly,
        // blazor.web.js) are found through the build's static web assets manifest; a published app has none and serves wwwroot.
        if (!app.Environment.IsDevelopment()) StaticWebAssetsLoader.UseStaticWebAssets(app.Environment, app.Configuration);
        app.UseAntiforgery();
        app.MapStaticAssets();
        app.MapRazorComponents<App>()
            .AddInteractiveServerRenderMode()
            .RequireAuthorization(AccessPolicies.ReadRuns);
        return app;
    }
}
