using Pipeline.Stages.Models;
using Pipeline.Stages.Reporting;

namespace Pipeline.Stages.Tests.Reporting;

/// <summary>The reference numbers the Compare page and the report show: sourced, and consistent with the model library.</summary>
public class PaperReferenceTests
{
    private static readonly PaperReference Reference = PaperReference.Load();

    [Fact]
    public void Every_number_has_a_source_and_the_issue_s_reference_points_are_there()
    {
        Assert.All(Reference.Models, m => Assert.False(string.IsNullOrWhiteSpace(m.Source), m.Name));
        Assert.All(new[] { Reference.ReleasedTop1.Source, Reference.NeuralMapping.Source, Reference.Ceilings.Source }, s => Assert.False(string.IsNullOrWhiteSpace(s)));
        Assert.Equal((11_689_512L, 0.6976), Reference.Models.Single(m => m.Name == "ResNet-18") is var r18 ? (r18.Parameters, r18.Top1) : default);
        Assert.Equal((21_797_672L, 0.7331), Reference.Models.Single(m => m.Name == "ResNet-34") is var r34 ? (r34.Parameters, r34.Top1) : default);
        var median = Reference.Models.Single(m => m.Kind == "convrnn");
        Assert.Equal((15_400_000L, 16_100_000L, 0.730), (median.Parameters, median.ParametersHigh!.Value, median.Top1));
        Assert.Equal(median.Top1, Reference.ReleasedTop1.Intermediate["rgc"]);
        Assert.Equal((0.895, 0.822), (Reference.Ceilings.V4, Reference.Ceilings.It));
    }

    [Theory]
    [InlineData("resnet18", "ResNet-18")]
    [InlineData("resnet34", "ResNet-34")]
    public void The_resnets_of_the_model_library_have_the_referenced_parameter_counts(string preset, string name)
    {
        Assert.Equal(Reference.Models.Single(m => m.Name == name).Parameters, ModelFactory.CountParameters(ModelPresets.Load(preset, 224, 1000)));
    }

    [Fact]
    public void The_mapped_layers_and_the_released_cell_types_exist_in_the_model_library()
    {
        var median = ModelPresets.Load("rgc-median").Layers.Select(l => l.Name).ToHashSet();
        var shallow = ModelPresets.Load("rgc-shallow").Layers.Select(l => l.Name).ToHashSet();
        Assert.All(Reference.NeuralMapping.Median.Values.Concat(Reference.NeuralMapping.Intermediate.Values).SelectMany(l => l), l => Assert.Contains(l, median));
        Assert.All(Reference.NeuralMapping.Shallow.Values.SelectMany(l => l), l => Assert.Contains(l, shallow));
        var cellTypes = Enum.GetValues<Pipeline.Stages.Models.Cells.CellType>().Select(t => System.Text.Json.JsonNamingPolicy.SnakeCaseLower.ConvertName(t.ToString())).ToHashSet();
        Assert.All(Reference.ReleasedTop1.Shallow.Keys.Concat(Reference.ReleasedTop1.Intermediate.Keys), k => Assert.Contains(k, cellTypes));
    }

    [Theory]
    [InlineData("rgc-shallow", "V4", "conv3")]
    [InlineData("rgc-shallow", "IT", "conv4,conv5")]
    [InlineData("rgc-median", "cIT/aIT", "conv8,conv9")]
    [InlineData("rgc-median", "IT", "conv7,conv8,conv9")]
    [InlineData("rgc-intermediate-lstm", "V4", "conv5,conv6")]
    public void The_paper_s_layers_of_an_area_follow_the_model_family(string model, string area, string layers)
    {
        Assert.Equal(layers.Split(','), Reference.NeuralMapping.LayersFor(model, area));
    }

    [Theory]
    [InlineData("basenet", "V4")]
    [InlineData("rgc-shallow", "MT")]
    [InlineData(null, "V4")]
    public void Another_model_or_area_has_no_paper_layers(string? model, string area)
    {
        Assert.Null(Reference.NeuralMapping.LayersFor(model, area));
    }
}
