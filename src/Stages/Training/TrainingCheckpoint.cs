using System.Text.Json.Nodes;

namespace Pipeline.Stages.Training;

/// <summary>
/// Where training stands: <paramref name="Step"/> = optimizer steps completed; (<paramref name="Epoch"/>,
/// <paramref name="BatchInEpoch"/>) = the next batch to train.
/// </summary>
public sealed record TrainingPosition(long Step, int Epoch, int BatchInEpoch);

/// <summary>A loaded or saved checkpoint: its position, the trainer's free-form state (e.g. history), and its store folder.</summary>
public sealed record TrainingCheckpoint(TrainingPosition Position, JsonObject State, string Folder);
