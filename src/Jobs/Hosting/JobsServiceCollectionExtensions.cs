using Hangfire;
using Hangfire.InMemory;
using Hangfire.PostgreSql;
using Hangfire.PostgreSql.Factories;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Pipeline.Jobs.Engine;
using Pipeline.Jobs.RunStore;
using Pipeline.Stages.Artifacts;
using Pipeline.Jobs.Configuration;
using Pipeline.Jobs.Runs;
using Pipeline.Jobs.Schedules;

namespace Pipeline.Jobs.Hosting;

/// <summary>Registers the pipeline's services: the one place that decides embedded versus production adapters.</summary>
public static class JobsServiceCollectionExtensions
{
    /// <summary>
    /// Run store, artifact store, Hangfire client, mediator and engine. ConnectionStrings:Postgres selects PostgreSQL +
    /// Hangfire.PostgreSql, else SQLite + in-memory Hangfire under Pipeline:DataFolder; ConnectionStrings:Blobs
    /// selects Azure Blob Storage, else a local artifact folder.
    /// </summary>
    public static IServiceCollection AddPipelineJobs(this IServiceCollection services, IConfiguration config)
    {
        services.AddOptions<PipelineOptions>().Bind(config.GetSection(PipelineOptions.Section)).ValidateDataAnnotations().ValidateOnStart();
        var dataFolder = PipelineOptions.ResolveDataFolder(config[$"{PipelineOptions.Section}:{nameof(PipelineOptions.DataFolder)}"]);
        var postgres = config.GetConnectionString("Postgres");
        var blobs = config.GetConnectionString("Blobs");
        var mode = new PipelineMode(postgres is null, blobs is null, dataFolder);
        services.AddSingleton(mode);

        services.AddDbContextFactory<RunStoreContext>(o =>
        {
            if (postgres is not null) o.UseNpgsql(postgres);
            else
            {
                Directory.CreateDirectory(dataFolder);
                o.UseSqlite($"Data Source={Path.Combine(dataFolder, "pipeline.db")};Default Timeout=30");
            }
        });

        services.AddSingleton<IArtifactStore>(sp =>
        {
            var options = sp.GetRequiredService<IOptions<PipelineOptions>>().Value;
            return blobs is null
                ? new FileSystemArtifactStore(Path.Combine(dataFolder, "artifacts"))
                : new Artifacts.AzureBlobArtifactStore(blobs, options.BlobContainer);
        });

        services.AddSingleton<JobStorage>(sp =>
        {
            if (postgres is null) return new InMemoryStorage(new InMemoryStorageOptions());
            // Resolved while the host builds its hosted services, before any of them starts: the wait for a database
            // that is still coming up happens here, once (Hangfire's storage prepares its schema when it is created).
            var stopping = sp.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;
            StartupWait.PostgresAsync(postgres, sp.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(StartupWait)), stopping).GetAwaiter().GetResult();
            var storage = HangfirePostgresOptions(sp.GetRequiredService<IOptions<PipelineOptions>>().Value.HangfireLongPolling);
            return new PostgreSqlStorage(new NpgsqlConnectionFactory(postgres, storage), storage);
        });
        services.AddHangfire((sp, cfg) => cfg
            .SetDataCompatibilityLevel(CompatibilityLevel.Version_180)
            .UseSimpleAssemblyNameTypeSerializer()
            .UseRecommendedSerializerSettings()
            .UseStorage(sp.GetRequiredService<JobStorage>()));

        services.AddMediator(o =>
        {
            o.ServiceLifetime = ServiceLifetime.Scoped;
            o.PipelineBehaviors = [typeof(StageLoggingBehavior<,>), typeof(StagePreambleBehavior<,>)];
        });
        services.AddSingleton<StageEngine>();
        services.AddScoped<StageJob>();
        services.AddSingleton<RunQueries>();
        services.AddSingleton<RunFeed>();
        services.AddSingleton<RunLauncher>();
        services.AddSingleton<RunResults>();
        services.AddSingleton<ScheduleMirror>();
        services.AddSingleton<ScheduleService>();
        services.AddScoped<ScheduledRunJob>();
        services.AddHostedService<StartupChecks>();
        return services;
    }

    /// <summary>
    /// A worker: the Hangfire server on the configured queues plus the reconciler, and (<paramref name="schedules"/>) the
    /// schedules mirrored to Hangfire recurring jobs, which this server then fires.
    /// </summary>
    public static IServiceCollection AddPipelineWorker(this IServiceCollection services, bool schedules = true)
    {
        if (schedules) services.AddHostedService(sp => sp.GetRequiredService<ScheduleMirror>());
        services.AddHangfireServer((sp, o) =>
        {
            var options = sp.GetRequiredService<IOptions<PipelineOptions>>().Value;
            o.Queues = [.. options.ResolvedQueues];
            o.WorkerCount = options.WorkerCount;
            o.ServerName = options.ResolvedWorkerName;
            // Past the stages' grace period: StageJob hands a stage back itself when the grace period ends.
            o.ShutdownTimeout = options.ShutdownGracePeriod + TimeSpan.FromSeconds(10);
            o.SchedulePollingInterval = TimeSpan.FromSeconds(5);
        });
        services.AddHostedService<Reconciler>();
        services.AddSingleton(sp => sp.GetServices<IHostedService>().OfType<Reconciler>().Single());
        services.AddOptions<HostOptions>().Configure<IOptions<PipelineOptions>>((host, pipeline) =>
            host.ShutdownTimeout = pipeline.Value.ShutdownGracePeriod + TimeSpan.FromSeconds(20));
        return services;
    }

    // Sliding invisibility: a long stage keeps its job fetched instead of being re-delivered after 30 minutes (DESIGN.md).
    // Long polling (LISTEN/NOTIFY) wakes an idle worker at once; the queue poll is the backstop for a missed notification.
    private static PostgreSqlStorageOptions HangfirePostgresOptions(bool longPolling) => new()
    {
        SchemaName = "hangfire",
        PrepareSchemaIfNecessary = true,
        UseSlidingInvisibilityTimeout = true,
        QueuePollInterval = TimeSpan.FromSeconds(1),
        EnableLongPolling = longPolling,
    };
}
