using System.Text.Json.Serialization;
using System.Formats.Tar;
using System.Text.Json.Nodes;
using Mediator;
using Microsoft.Extensions.Logging;
using Pipeline.Stages.Execution;
using Pipeline.Stages.Models;
using TorchSharp;

using Pipeline.Stages.Models.Checkpoints;

namespace Pipeline.Stages.NeuralFit;

/// <summary>
/// Writes a virtual-monkey dataset (see <see cref="VirtualMonkey"/>) as artifacts: <c>assembly.nc</c>, <c>images.tar</c>
/// and <c>ground_truth.json</c>. The reference model is the trained model of a train stage it depends on, or a preset
/// initialised from the seed. Runs on the CPU queue: one forward unroll of a few hundred small images.
/// </summary>
[Stage("virtual-monkey", StageQueues.Cpu, 1)]
public sealed record VirtualMonkeyStage(VirtualMonkeyParams Params, StageContext Context) : IStageRequest<VirtualMonkeyParams>
{
    public const string AssemblyFile = VirtualMonkeyWriter.AssemblyFile;
    public const string ImagesFile = "images.tar";
}

/// <summary>Parameters of the <c>virtual-monkey</c> stage (defaults as <see cref="VirtualMonkeyOptions"/>).</summary>
public sealed record VirtualMonkeyParams : ITorchStageParams
{
    private static readonly VirtualMonkeyOptions Defaults = new();

    /// <summary>A preset initialised from <see cref="Seed"/>; leave it out when the stage depends on a train stage, whose
    /// trained model is then the reference (its spec fixes width and image size).</summary>
    public ReferenceModelParams? Model { get; init; }

    public IReadOnlyList<AreaSpec> Areas { get; init; } = Defaults.Areas;
    public int Stimuli { get; init; } = Defaults.Stimuli;
    public int Repetitions { get; init; } = Defaults.Repetitions;
    public double Noise { get; init; } = Defaults.Noise;
    public int FeaturesPerSite { get; init; } = Defaults.FeaturesPerSite;
    public int? ProjectionDims { get; init; }
    public int Classes { get; init; } = Defaults.Classes;
    public long Seed { get; init; }
    public int BatchSize { get; init; } = Defaults.BatchSize;

    /// <summary>libtorch compute threads; null = every core.</summary>
    public int? Threads { get; init; }

    /// <summary>The reference model runs on the CPU (the stage's queue); not a field of the RunSpec.</summary>
    [JsonIgnore]
    public string Device => "cpu";

    public VirtualMonkeyOptions ToOptions(string? modelPath) => ToOptions(Model ?? new ReferenceModelParams(), modelPath);

    private VirtualMonkeyOptions ToOptions(ReferenceModelParams model, string? modelPath) => new()
    {
        Preset = model.Preset,
        Width = model.Width,
        ImageSize = model.ImageSize,
        ModelPath = modelPath,
        Areas = Areas,
        Stimuli = Stimuli,
        Repetitions = Repetitions,
        Noise = Noise,
        FeaturesPerSite = FeaturesPerSite,
        ProjectionDims = ProjectionDims,
        Classes = Classes,
        Seed = Seed,
        BatchSize = BatchSize,
    };

    public IEnumerable<ValidationError> Validate()
    {
        foreach (var e in ToOptions(null).Validate())
        {
            yield return e.Field switch
            {
                "preset" or "width" or "image_size" => e with { Field = "model." + e.Field },
                _ => e,
            };
        }
        foreach (var e in TorchSettings.Validate(this)) yield return e;
    }
}

/// <summary>A model preset at a width and image size, initialised from the stage's seed.</summary>
public sealed record ReferenceModelParams
{
    private static readonly VirtualMonkeyOptions Defaults = new();

    public string Preset { get; init; } = Defaults.Preset;
    public double Width { get; init; } = Defaults.Width;
    public int ImageSize { get; init; } = Defaults.ImageSize;
}

public sealed class VirtualMonkeyHandler : IRequestHandler<VirtualMonkeyStage, StageResult>
{
    public async ValueTask<StageResult> Handle(VirtualMonkeyStage request, CancellationToken cancellationToken)
    {
        var (p, context) = (request.Params, request.Context);
        var ct = cancellationToken;

        var trained = TrainedModels.IsProvided(context);
        if (trained && p.Model is not null)
            throw new StageInputException("model is set and a dependency provides a trained model.safetensors; use one: remove 'model' to read the trained model, or the dependency to use the preset.");
        var modelPath = trained ? await TrainedModels.DownloadAsync(context, ct) : null;

        context.Progress.Report(0, "unrolling the reference model");
        VirtualMonkeyData data;
        try
        {
            data = VirtualMonkey.Synthesize(p.ToOptions(modelPath));
        }
        catch (Exception e) when (e is ArgumentException or NeuralDataException or ModelSpecException or Models.Checkpoints.CheckpointMismatchException)
        {
            throw new StageInputException(e.Message);
        }
        ct.ThrowIfCancellationRequested();

        var written = Path.Combine(context.ScratchFolder, "dataset");
        VirtualMonkeyWriter.Write(data, written);
        var tar = Path.Combine(context.ScratchFolder, VirtualMonkeyStage.ImagesFile);
        await TarFile.CreateFromDirectoryAsync(Path.Combine(written, VirtualMonkeyWriter.ImagesFolder), tar, includeBaseDirectory: false, ct);
        foreach (var (file, name) in new[]
        {
            (Path.Combine(written, VirtualMonkeyWriter.AssemblyFile), VirtualMonkeyStage.AssemblyFile),
            (tar, VirtualMonkeyStage.ImagesFile),
            (Path.Combine(written, VirtualMonkeyWriter.GroundTruthFile), VirtualMonkeyWriter.GroundTruthFile),
        })
        {
            await using var stream = File.OpenRead(file);
            await context.WriteOutputAsync(name, stream, ct);
        }
        var truth = data.GroundTruth;
        foreach (var a in truth.Areas)
        {
            context.Logger.LogInformation("{Region} <- {Layer} (latency {Latency} steps, first response {First} ms), {Sites} sites, noise {Noise}, expected ceiling {Ceiling:F3}",
                a.Region, a.Layer, a.LatencySteps, a.FirstResponseBin * VirtualMonkey.StepMs, a.Sites, a.NoiseSigma, a.ExpectedCeiling);
        }
        context.Progress.Report(1, "done");
        var summary = new JsonObject
        {
            ["reference"] = truth.TrainedModel is null ? $"{truth.Preset} (seed {truth.Seed})" : $"trained {truth.Preset}",
            ["stimuli"] = truth.Stimuli,
            ["sites"] = data.Assembly.Neuroids.Count,
            ["areas"] = new JsonObject(truth.Areas.Select(a => KeyValuePair.Create(a.Region, (JsonNode?)new JsonObject
            {
                ["layer"] = a.Layer,
                ["latency_steps"] = a.LatencySteps,
                ["expected_ceiling"] = Math.Round(a.ExpectedCeiling, 3),
            }))),
        };
        return new StageResult(context.Outputs, summary);
    }
}
