using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Serilog;
using Serilog.Events;
using Serilog.Formatting.Compact;

namespace Pipeline.Jobs.Hosting;

/// <summary>Builds the generic host the CLI commands run in: configuration, Serilog, the pipeline's services.</summary>
public static class PipelineHost
{
    /// <summary>
    /// <paramref name="schedules"/> false: a worker that fires no schedules — a `--wait` command's own server in embedded
    /// mode, whose in-memory Hangfire would otherwise fire them a second time beside the long-running worker or web host.
    /// </summary>
    public static IHost Build(bool worker, IDictionary<string, string?>? overrides = null, bool schedules = true)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = [], ContentRootPath = Directory.GetCurrentDirectory() });
        builder.Configuration.AddJsonFile(Path.Combine(AppContext.BaseDirectory, "appsettings.json"), optional: true);
        builder.Configuration.AddJsonFile("appsettings.json", optional: true);
        builder.Configuration.AddEnvironmentVariables();
        if (overrides is not null) builder.Configuration.AddInMemoryCollection(overrides);
        builder.Logging.ClearProviders();
        builder.Services.AddSerilog((_, lc) => ConfigureSerilog(lc, builder.Configuration));
        builder.Services.AddPipelineJobs(builder.Configuration);
        if (worker) builder.Services.AddPipelineWorker(schedules);
        return builder.Build();
    }

    /// <summary>
    /// Structured logs with RunId/StageId/Attempt from the log context; readable text on a terminal, compact JSON when
    /// Pipeline:LogFormat is "json" (production). Logs go to stderr so that --json output on stdout stays parseable.
    /// </summary>
    public static LoggerConfiguration ConfigureSerilog(LoggerConfiguration lc, IConfiguration config)
    {
        lc.MinimumLevel.Information()
            .MinimumLevel.Override("Microsoft", LogEventLevel.Warning)
            .MinimumLevel.Override("Hangfire", LogEventLevel.Warning)
            .MinimumLevel.Override("System.Net.Http", LogEventLevel.Warning)
            // Start-up failures (invalid options) are reported once, by the caller, without a stack trace.
            .MinimumLevel.Override("Microsoft.Extensions.Hosting.Internal.Host", LogEventLevel.Fatal)
            .Enrich.FromLogContext();
        if (Enum.TryParse<LogEventLevel>(config["Pipeline:LogLevel"], ignoreCase: true, out var level)) lc.MinimumLevel.Is(level);
        return string.Equals(config["Pipeline:LogFormat"], "json", StringComparison.OrdinalIgnoreCase)
            ? lc.WriteTo.Console(new CompactJsonFormatter(), standardErrorFromLevel: LogEventLevel.Verbose)
            : lc.WriteTo.Console(outputTemplate: "[{Timestamp:HH:mm:ss} {Level:u3}] {Message:lj}{NewLine}{Exception}", standardErrorFromLevel: LogEventLevel.Verbose);
    }
}
