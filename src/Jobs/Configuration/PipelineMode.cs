namespace Pipeline.Jobs.Configuration;

/// <summary>Which adapters this process uses.</summary>
public sealed record PipelineMode(bool EmbeddedDatabase, bool LocalArtifacts, string DataFolder);
