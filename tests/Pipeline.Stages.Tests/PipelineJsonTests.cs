using System.Text.Json;
using Pipeline.Stages.Training;

namespace Pipeline.Stages.Tests;

public sealed class PipelineJsonTests
{
    [Fact]
    public void A_diverged_models_metrics_are_written_and_read_back()
    {
        var point = new EvalPoint(937, 0, double.PositiveInfinity, 0.1, 0.5, null);
        var json = JsonSerializer.Serialize(point, PipelineJson.Options);
        Assert.Contains("\"Infinity\"", json);
        Assert.Equal(double.PositiveInfinity, JsonSerializer.Deserialize<EvalPoint>(json, PipelineJson.Options)!.Loss);
        Assert.Contains("\"NaN\"", JsonSerializer.Serialize(new TrainPoint(1, 0, double.NaN, 0, 0.001, 1, 0), PipelineJson.Options));
    }
}
