using System.ComponentModel.DataAnnotations;
using Pipeline.Stages.Execution;

namespace Pipeline.Jobs.Configuration;

/// <summary>
/// Settings under "Pipeline" (appsettings.json or Pipeline__… environment variables), validated at start-up.
/// Connection strings are separate: ConnectionStrings:Postgres selects PostgreSQL + Hangfire.PostgreSql, otherwise the
/// embedded SQLite + in-memory Hangfire under <see cref="DataFolder"/>; ConnectionStrings:Blobs selects Azure Blob
/// Storage, otherwise a local artifact folder.
/// </summary>
public sealed class PipelineOptions : IValidatableObject
{
    public const string Section = "Pipeline";

    /// <summary>
    /// Embedded-mode home (pipeline.db, artifacts/) and every process's scratch space. Default: <c>.pipeline</c> in the
    /// repository the process runs from (found upwards from the current folder, then from the executable), so the CLI
    /// and the web host share one wherever each is started; outside a checkout, <c>~/.local/share/convrnn-pipeline</c>.
    /// Use <see cref="PipelineMode.DataFolder"/> for the resolved path.
    /// </summary>
    public string? DataFolder { get; set; }

    /// <summary>The data folder this configuration names (see <see cref="DataFolder"/>), as a full path.</summary>
    public static string ResolveDataFolder(string? configured, IEnumerable<string>? searchFrom = null)
    {
        if (!string.IsNullOrWhiteSpace(configured)) return Path.GetFullPath(configured);
        foreach (var start in searchFrom ?? [Directory.GetCurrentDirectory(), AppContext.BaseDirectory])
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "Pipeline.sln"))) return Path.Combine(dir.FullName, ".pipeline");
            }
        }
        var data = Environment.GetEnvironmentVariable("XDG_DATA_HOME") is { Length: > 0 } xdg
            ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "share");
        return Path.Combine(data, "convrnn-pipeline");
    }

    /// <summary>Blob container for artifacts (Azure mode).</summary>
    [RegularExpression("^[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])$", ErrorMessage = "Pipeline:BlobContainer must be 3-63 lower-case letters, digits or '-' (an Azure container name).")]
    public string BlobContainer { get; set; } = "pipeline";

    /// <summary>Folder holding RunSpec presets; default: the presets/ copied beside the executable, else ./presets.</summary>
    public string? PresetsFolder { get; set; }

    /// <summary>How often a running stage writes its heartbeat, progress and metrics to the run store.</summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>A running stage without a heartbeat for this long is considered lost and re-queued.</summary>
    public TimeSpan HeartbeatTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>How often the reconciler looks for lost jobs and stalled stages.</summary>
    public TimeSpan ReconcileInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// How often a process with a Hangfire server mirrors the schedules to Hangfire recurring jobs again (changes are
    /// applied at once where they are made; in embedded mode another process's changes arrive this way).
    /// </summary>
    public TimeSpan ScheduleSyncInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long a stopping worker (SIGTERM, Ctrl-C, spot eviction) gives each running stage to checkpoint and return.
    /// A stage still busy after it (e.g. inside one long native call) is recorded as handed back, never as failed.
    /// Azure's spot eviction notice is at least 30 s.
    /// </summary>
    public TimeSpan ShutdownGracePeriod { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How many times a stage that failed because the artifact store was unreachable is retried by itself.</summary>
    [Range(0, 100, ErrorMessage = "Pipeline:StoreOutageRetries must be between 0 and 100.")] public int StoreOutageRetries { get; set; } = 3;

    /// <summary>The wait before each of those automatic retries.</summary>
    public TimeSpan StoreOutageRetryDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Queues this process's workers take jobs from; empty = all. (No default list here: the configuration binder
    /// appends Pipeline:Queues:0=gpu to an array's initial items, and a GPU worker would take CPU jobs too.)
    /// </summary>
    public string[] Queues { get; set; } = [];

    public IReadOnlyList<string> ResolvedQueues => Queues.Length == 0 ? StageQueues.All : [.. Queues.Distinct()];

    [Range(1, 64)] public int WorkerCount { get; set; } = 1;

    /// <summary>
    /// PostgreSQL mode: idle workers wait on LISTEN/NOTIFY and fetch a job the moment it is enqueued (Hangfire.PostgreSql's
    /// EnableLongPolling), so a stage's dependents start within milliseconds of it ending; the 1 s queue poll stays as
    /// the backstop. `pipeline bench handoff` measures both settings.
    /// </summary>
    public bool HangfireLongPolling { get; set; } = true;

    /// <summary>Shown in the run store as the stage's worker; default host:pid.</summary>
    public string? WorkerName { get; set; }

    public string ResolvedWorkerName => WorkerName ?? $"{Environment.MachineName}:{Environment.ProcessId}";

    /// <summary>Debian's dataset packages (dataset-fashion-mnist installs /usr/share/datasets/fashion-mnist).</summary>
    public const string DefaultDataRoot = "/usr/share/datasets";

    /// <summary>
    /// Folders whose files runs launched through the web API may read (shard <c>source.path</c>, neural-fit <c>path</c>
    /// and <c>images_path</c>); the CLI is not restricted. Unset: <see cref="DefaultDataRoot"/>; setting the list
    /// (Pipeline__DataRoots__0=/data, Pipeline__DataRoots__1=…) replaces that default.
    /// </summary>
    public string[]? DataRoots { get; set; }

    public IReadOnlyList<string> EffectiveDataRoots => DataRoots is { Length: > 0 } roots ? roots : [DefaultDataRoot];

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (HeartbeatInterval <= TimeSpan.Zero) yield return new("Pipeline:HeartbeatInterval must be positive, e.g. 00:00:05.", [nameof(HeartbeatInterval)]);
        if (HeartbeatTimeout < HeartbeatInterval * 2) yield return new("Pipeline:HeartbeatTimeout must be at least twice Pipeline:HeartbeatInterval.", [nameof(HeartbeatTimeout)]);
        if (ShutdownGracePeriod < TimeSpan.Zero || ShutdownGracePeriod > TimeSpan.FromHours(1)) yield return new("Pipeline:ShutdownGracePeriod must be between 00:00:00 and 01:00:00, e.g. 00:00:30.", [nameof(ShutdownGracePeriod)]);
        if (StoreOutageRetryDelay < TimeSpan.Zero) yield return new("Pipeline:StoreOutageRetryDelay must not be negative, e.g. 00:00:30.", [nameof(StoreOutageRetryDelay)]);
        if (ReconcileInterval <= TimeSpan.Zero) yield return new("Pipeline:ReconcileInterval must be positive, e.g. 00:00:15.", [nameof(ReconcileInterval)]);
        foreach (var (root, i) in (DataRoots ?? []).Select((r, i) => (r, i)))
        {
            if (string.IsNullOrWhiteSpace(root) || !Path.IsPathRooted(root))
                yield return new($"Pipeline:DataRoots:{i} must be an absolute folder path (e.g. /data), got '{root}'.", [nameof(DataRoots)]);
        }
        foreach (var q in Queues.Where(q => !StageQueues.All.Contains(q)))
        {
            yield return new($"Pipeline:Queues has unknown queue '{q}'; use {string.Join(", ", StageQueues.All)}.", [nameof(Queues)]);
        }
    }
}
