using Microsoft.EntityFrameworkCore;

namespace Pipeline.Jobs.RunStore;

/// <summary>One model for PostgreSQL (production) and SQLite (embedded); tables live in the "pipeline" schema on PostgreSQL.</summary>
public sealed class RunStoreContext(DbContextOptions<RunStoreContext> options) : DbContext(options)
{
    public DbSet<Run> Runs => Set<Run>();
    public DbSet<Stage> Stages => Set<Stage>();
    public DbSet<StageDependency> StageDependencies => Set<StageDependency>();
    public DbSet<StageTransition> StageTransitions => Set<StageTransition>();
    public DbSet<MetricPoint> MetricPoints => Set<MetricPoint>();
    public DbSet<StageLogLine> StageLogs => Set<StageLogLine>();
    public DbSet<ArtifactRecord> Artifacts => Set<ArtifactRecord>();
    public DbSet<Schedule> Schedules => Set<Schedule>();
    public DbSet<SearchTrial> SearchTrials => Set<SearchTrial>();
    public DbSet<TrialRung> TrialRungs => Set<TrialRung>();
    public DbSet<SchemaVersion> SchemaVersions => Set<SchemaVersion>();

    // SQLite returns DateTime without a kind; every time in the store is UTC, so say so on the way out.
    protected override void ConfigureConventions(ModelConfigurationBuilder configurationBuilder)
    {
        configurationBuilder.Properties<DateTime>().HaveConversion<UtcDateTimeConverter>();
        configurationBuilder.Properties<DateTime?>().HaveConversion<UtcDateTimeConverter>();
    }

    private sealed class UtcDateTimeConverter() : Microsoft.EntityFrameworkCore.Storage.ValueConversion.ValueConverter<DateTime, DateTime>(
        v => v.Kind == DateTimeKind.Utc ? v : v.ToUniversalTime(), v => DateTime.SpecifyKind(v, DateTimeKind.Utc));

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        if (Database.IsNpgsql()) modelBuilder.HasDefaultSchema("pipeline");

        modelBuilder.Entity<Run>(e =>
        {
            e.ToTable("runs");
            e.Property(r => r.Status).HasConversion<string>().HasMaxLength(16);
            e.HasMany(r => r.Stages).WithOne(s => s.Run).HasForeignKey(s => s.RunId);
            e.HasIndex(r => r.CreatedAt);
        });
        modelBuilder.Entity<Stage>(e =>
        {
            e.ToTable("stages");
            e.Property(s => s.Status).HasConversion<string>().HasMaxLength(16);
            e.HasIndex(s => new { s.RunId, s.Name }).IsUnique();
            e.HasIndex(s => s.Status);
            e.HasIndex(s => s.ContentKey);
            e.HasIndex(s => s.TrialId);
            e.HasMany(s => s.DependsOn).WithOne().HasForeignKey(d => d.StageId);
            e.HasMany(s => s.History).WithOne().HasForeignKey(h => h.StageId);
        });
        modelBuilder.Entity<StageDependency>(e =>
        {
            e.ToTable("stage_dependencies");
            e.HasKey(d => new { d.StageId, d.DependsOnStageId });
            e.HasOne(d => d.DependsOnStage).WithMany().HasForeignKey(d => d.DependsOnStageId).OnDelete(DeleteBehavior.Restrict);
        });
        modelBuilder.Entity<StageTransition>(e =>
        {
            e.ToTable("stage_transitions");
            e.Property(t => t.From).HasConversion<string>().HasMaxLength(16);
            e.Property(t => t.To).HasConversion<string>().HasMaxLength(16);
        });
        modelBuilder.Entity<MetricPoint>(e =>
        {
            e.ToTable("metric_points");
            e.HasIndex(m => new { m.StageId, m.Name });
        });
        modelBuilder.Entity<StageLogLine>(e =>
        {
            e.ToTable("stage_logs");
            e.Property(l => l.Level).HasMaxLength(12);
            e.HasIndex(l => new { l.StageId, l.Attempt, l.Id });
            e.HasIndex(l => new { l.RunId, l.Id });
        });
        modelBuilder.Entity<ArtifactRecord>(e =>
        {
            e.ToTable("artifacts");
            e.HasIndex(a => a.StageId);
            e.HasIndex(a => a.RunId);
        });
        modelBuilder.Entity<SchemaVersion>(e => e.ToTable("schema_version"));
        modelBuilder.Entity<SearchTrial>(e =>
        {
            e.ToTable("search_trials");
            e.Property(t => t.Status).HasConversion<string>().HasMaxLength(16);
            e.HasIndex(t => new { t.SearchStageId, t.Number }).IsUnique();
        });
        modelBuilder.Entity<TrialRung>(e =>
        {
            e.ToTable("trial_rungs");
            e.HasIndex(r => new { r.SearchStageId, r.Step });
            e.HasIndex(r => new { r.TrialId, r.Step }).IsUnique();
        });
        modelBuilder.Entity<Schedule>(e =>
        {
            e.ToTable("schedules");
            e.Property(s => s.Misfire).HasConversion<string>().HasMaxLength(8);
            e.HasIndex(s => s.Name).IsUnique();
        });
    }
}
