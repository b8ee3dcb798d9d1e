using System.Text.Json;
using Pipeline.Stages.Data;

namespace Pipeline.Stages.Tests.Data;

public sealed class ShardParamsTests
{
    private static List<string> Errors(string json) =>
        ShardStageTests.Parse(json).Validate().Select(e => e.ToString()).ToList();

    [Fact]
    public void Empty_params_are_a_valid_synthetic_set()
    {
        var p = ShardStageTests.Parse("{}");

        Assert.Empty(p.Validate());
        Assert.Equal(ShardSourceKind.Synthetic, p.Source.Kind);
        Assert.Equal(64L << 20, p.ShardMaxBytes);
        Assert.Null(p.EffectiveShortSide);
    }

    [Fact]
    public void Folder_without_a_path_names_source_path()
    {
        var errors = Errors("""{"source": {"kind": "folder"}}""");

        Assert.Single(errors);
        Assert.StartsWith("source.path:", errors[0]);
    }

    [Fact]
    public void Out_of_range_values_name_their_fields()
    {
        var errors = Errors("""{"short_side": 4, "shard_max_bytes": 10, "shard_max_samples": 0, "jpeg_quality": 90, "source": {"occlusion": 0.95, "num_classes": 49, "min_contrast": 0.9}}""");

        Assert.Contains(errors, e => e.StartsWith("short_side:"));
        Assert.Contains(errors, e => e.StartsWith("shard_max_bytes:"));
        Assert.Contains(errors, e => e.StartsWith("shard_max_samples:"));
        Assert.Contains(errors, e => e.StartsWith("jpeg_quality:") && e.Contains("image_format"));
        Assert.Contains(errors, e => e.StartsWith("source.occlusion:") && e.Contains("0.9"));
        Assert.Contains(errors, e => e.StartsWith("source.num_classes:") && e.Contains("48"));
        Assert.Contains(errors, e => e.StartsWith("source.min_contrast:") && e.Contains("0.7"));
    }

    [Fact]
    public void An_option_of_another_source_kind_is_an_error()
    {
        var errors = Errors("""{"source": {"kind": "fashion_mnist", "occlusion": 0.2, "val_fraction": 0.1, "min_contrast": 0.3}}""");

        Assert.Contains(errors, e => e.StartsWith("source.occlusion:") && e.Contains("synthetic"));
        Assert.Contains(errors, e => e.StartsWith("source.min_contrast:") && e.Contains("synthetic"));
        Assert.Contains(errors, e => e.StartsWith("source.val_fraction:") && e.Contains("folder"));
    }

    [Fact]
    public void Params_round_trip_through_json_without_derived_fields()
    {
        var p = ShardStageTests.Parse("""{"source": {"kind": "folder", "path": "/data"}, "short_side": 128}""");

        var json = JsonSerializer.Serialize(p, Pipeline.Stages.PipelineJson.Options);

        Assert.DoesNotContain("effective", json);
        Assert.Equal(p, ShardStageTests.Parse(json));
    }

    [Fact]
    public void Unknown_fields_are_rejected_when_parsing()
    {
        Assert.Throws<JsonException>(() => ShardStageTests.Parse("""{"source": {"kind": "synthetic", "occlusoin": 0.2}}"""));
    }
}
