using System.Security.Cryptography;
using System.Text;
using Pipeline.Stages.Artifacts;

namespace Pipeline.Jobs.Engine;

/// <summary>The one hashing rule for caching: hash(kind, stage code version, canonical params, input artifact hashes).</summary>
public static class ContentKeys
{
    /// <summary>A planned or stored stage's key: its kind's version, canonical params, inputs, and fingerprint of external inputs.</summary>
    public static string For(RunSpecs.StageKind kind, Pipeline.Stages.Execution.IStageParams parameters, string canonicalParams,
        IReadOnlyDictionary<string, IReadOnlyList<ArtifactInfo>> inputs) =>
        Compute(kind.Kind, kind.Version, canonicalParams, inputs, (parameters as Pipeline.Stages.Execution.IExternalInputs)?.FingerprintExternalInputs());

    public static string Compute(string kind, int version, string canonicalParams, IReadOnlyDictionary<string, IReadOnlyList<ArtifactInfo>> inputs,
        string? externalInputs = null)
    {
        var text = new StringBuilder()
            .Append("kind=").Append(kind).Append('\n')
            .Append("version=").Append(version).Append('\n')
            .Append("params=").Append(canonicalParams).Append('\n')
            .Append("external=").Append(externalInputs).Append('\n');
        // Inputs by content only (file name + sha256): the same bytes from another run give the same key.
        foreach (var (dep, artifacts) in inputs.OrderBy(i => i.Key, StringComparer.Ordinal))
        {
            foreach (var a in artifacts.OrderBy(a => a.Path, StringComparer.Ordinal))
            {
                text.Append("input=").Append(dep).Append('/').Append(Path.GetFileName(a.Path)).Append(':').Append(a.Sha256).Append('\n');
            }
        }
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }
}
