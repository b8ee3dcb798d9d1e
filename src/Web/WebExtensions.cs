using Hangfire;
using Microsoft.Extensions.Options;
using Pipeline.Jobs.Hosting;
using Pipeline.Jobs.RunSpecs;
using Pipeline.Web.Access;
using Pipeline.Web.Api;
using Pipeline.Web.Components;
using Pipeline.Web.Health;
using Serilog;
using Pipeline.Jobs.Configuration;

namespace Pipeline.Web;

public static class WebExtensions
{
    /// <summary>
    /// The dashboard host: the pipeline's services, an embedded worker (queues from Pipeline:Queues, by default all;
    /// set Pipeline:Web:RunWorker=false on a host that should only serve), access control (viewer/operator tokens in
    /// Pipeline:Web:AccessToken and Pipeline:Web:Tokens, Entra ID in Pipeline:Web:EntraId; without any the host starts on
    /// loopback only), health checks, and Serilog request logs.
    /// Binds 127.0.0.1:5080 unless URLs are configured (ASPNETCORE_URLS / --urls).
    /// </summary>
    public static WebApplicationBuilder AddPipelineWeb(this WebApplicationBuilder builder)
    {
        if (string.IsNullOrEmpty(builder.Configuration["urls"]) && string.IsNullOrEmpty(builder.Configuration["ASPNETCORE_URLS"]))
        {
            builder.WebHost.UseUrls("http://127.0.0.1:5080");
        }
        builder.Services.AddSerilog((_, lc) => PipelineHost.ConfigureSerilog(lc, builder.Configuration));
        builder.Services.AddPipelineJobs(builder.Configuration);
        if (builder.Configuration.GetSection(WebOptions.Section).Get<WebOptions>()?.RunWorker ?? true) builder.Services.AddPipelineWorker();
        builder.Services.AddWebAccess(builder.Configuration);
        // Runs launched through the API read external data only under Pipeline:DataRoots (the CLI passes none).
        builder.Services.AddSingleton(sp => new DataRoots(sp.GetRequiredService<IOptions<PipelineOptions>>().Value.EffectiveDataRoots));
        builder.Services.AddDashboard();
        builder.Services.AddProblemDetails();
        builder.Services.AddHealthChecks()
            .AddCheck<RunStoreHealthCheck>("run-store")
            .AddCheck<ArtifactStoreHealthCheck>("artifact-store");
        builder.Services.ConfigureHttpJsonOptions(o =>
        {
            o.SerializerOptions.PropertyNamingPolicy = Pipeline.Stages.PipelineJson.Options.PropertyNamingPolicy;
            foreach (var c in Pipeline.Stages.PipelineJson.Options.Converters) o.SerializerOptions.Converters.Add(c);
        });
        return builder;
    }

    public static WebApplication UsePipelineWeb(this WebApplication app)
    {
        app.UseSerilogRequestLogging();
        app.UseExceptionHandler();
        app.UseWebAccess();
        app.MapHangfireDashboard("/hangfire", new DashboardOptions
        {
            Authorization = [],
            AsyncAuthorization = [new HangfireDashboardAccess()],
            DashboardTitle = "ConvRNN Pipeline jobs",
        }).RequireAuthorization(AccessPolicies.OperateRuns);
        // Open to liveness probes; anonymous callers learn only the overall status when a token is configured.
        app.MapHealthChecks("/healthz", HealthResponse.Options).AllowAnonymous();
        app.MapRunsApi();
        app.MapArtifactsApi();
        app.MapSchedulesApi();
        app.MapDashboard();
        return app;
    }

    /// <summary>Runs the host; invalid settings (the refusal to listen off loopback without authentication among them) end it with their messages and exit code 2, without a stack trace.</summary>
    public static async Task<int> RunPipelineWebAsync(this WebApplication app)
    {
        try
        {
            await app.RunAsync();
            return 0;
        }
        catch (Exception e) when (InvalidOptions(e) is { Count: > 0 } failures)
        {
            await Console.Error.WriteLineAsync("Invalid configuration:\n  " + string.Join("\n  ", failures));
            return 2;
        }
    }

    private static List<string> InvalidOptions(Exception e) => e switch
    {
        OptionsValidationException v => [.. v.Failures],
        AggregateException a when a.InnerExceptions.All(i => i is OptionsValidationException) =>
            [.. a.InnerExceptions.SelectMany(i => ((OptionsValidationException)i).Failures)],
        _ => [],
    };
}
