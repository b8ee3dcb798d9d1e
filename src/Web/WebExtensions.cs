using Hangfire;
using Hangfire.Dashboard;
using Pipeline.Jobs.Hosting;
using Pipeline.Web.Api;
using Pipeline.Web.Health;
using Serilog;

namespace Pipeline.Web;

public static class WebExtensions
{
    /// <summary>
    /// The dashboard host: the pipeline's services, an embedded worker (queues from Pipeline:Queues, by default all;
    /// set Pipeline:Web:RunWorker=false on a host that should only serve), health checks, and Serilog request logs.
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
        if (builder.Configuration.GetValue("Pipeline:Web:RunWorker", true)) builder.Services.AddPipelineWorker();
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
        // Local requests only until sign-in exists (a later issue): the dashboard can delete and requeue jobs.
        app.UseHangfireDashboard("/hangfire", new DashboardOptions
        {
            Authorization = [new LocalRequestsOnlyAuthorizationFilter()],
            DashboardTitle = "ConvRNN Pipeline jobs",
        });
        app.MapHealthChecks("/healthz", HealthResponse.Options);
        app.MapRunsApi();
        app.MapArtifactsApi();
        return app;
    }
}
