using Bunit;
using Bunit.TestDoubles;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using MudBlazor;
using MudBlazor.Services;
using Pipeline.Jobs.Hosting;
using Pipeline.Web.Access;
using Pipeline.Web.Components.Controls;

namespace Pipeline.Web.Tests.Components;

/// <summary>
/// A bUnit context set up as the dashboard is: MudBlazor's services and popover host, loose JS interop (MudBlazor and
/// Plotly call into JS that bUnit does not run), and a signed-in user holding the policies a test gives.
/// </summary>
public abstract class DashboardContext : BunitContext, IAsyncLifetime
{
    protected DashboardContext()
    {
        JSInterop.Mode = JSRuntimeMode.Loose;
        Services.AddMudServices();
        Authorization = AddAuthorization();
        Services.AddScoped<OperatorGate>();
    }

    protected BunitAuthorizationContext Authorization { get; }

    protected void SignInAsViewer()
    {
        Authorization.SetAuthorized("viewer");
        Authorization.SetPolicies(AccessPolicies.ReadRuns);
    }

    protected void SignInAsOperator()
    {
        Authorization.SetAuthorized("operator");
        Authorization.SetPolicies(AccessPolicies.ReadRuns, AccessPolicies.OperateRuns);
    }

    /// <summary>MudSelect and menus need a popover provider in the render tree.</summary>
    protected void RenderPopoverHost() => Render<MudPopoverProvider>();

    /// <summary>
    /// The Jobs services in embedded mode (SQLite, in-memory Hangfire, local artifacts) in a private folder, presets from
    /// the repository: the same RunLauncher the host uses, without starting workers.
    /// </summary>
    protected string AddEmbeddedJobs()
    {
        var folder = Path.Combine(Path.GetTempPath(), "pipeline-web-components", Guid.NewGuid().ToString("N"));
        _folders.Add(folder);
        var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Pipeline:DataFolder"] = folder,
            ["Pipeline:PresetsFolder"] = PresetsFolder(),
        }).Build();
        Services.AddLogging();
        Services.AddPipelineJobs(config);
        Services.AddSingleton(new Pipeline.Jobs.RunSpecs.DataRoots([folder]));
        return folder;
    }

    private readonly List<string> _folders = [];

    protected static string PresetsFolder()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "presets");
            if (File.Exists(Path.Combine(candidate, "probe-dag.json"))) return candidate;
        }
        throw new InvalidOperationException("presets/probe-dag.json not found above " + AppContext.BaseDirectory);
    }

    public Task InitializeAsync() => Task.CompletedTask;

    /// <summary>MudBlazor registers services that only dispose asynchronously: xUnit disposes the context this way first.</summary>
    async Task IAsyncLifetime.DisposeAsync()
    {
        await base.DisposeAsync();
        foreach (var f in _folders.Where(Directory.Exists)) Directory.Delete(f, recursive: true);
    }
}
