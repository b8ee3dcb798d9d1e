using Pipeline.Stages.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Pipeline.Stages.Tests.Models;

/// <summary>The graph, biological unrolling, presentation and readouts, on every preset at a small input size.</summary>
public class ConvRnnModelTests
{
    public static TheoryData<string> ConvRnnPresets() =>
        [.. ModelPresets.Names.Where(n => ModelPresets.Load(n).Family == ModelFamily.Convrnn && ModelPresets.Load(n).Match is null)];

    public ConvRnnModelTests() => torch.set_num_threads(1);

    [Theory]
    [MemberData(nameof(ConvRnnPresets))]
    public void Every_layer_has_the_expected_shape_at_every_step(string preset)
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(1);
        using var model = (ConvRnnModel)ModelFactory.Create(preset, inputSize: 64, classes: 7, width: 0.125);
        var seen = new Dictionary<(string, int), long[]>();

        var result = model.Unroll(randn(2, 3, 64, 64), steps: 4, tap: (layer, step, output) => seen[(layer, step)] = output.shape);

        Assert.Equal(4, result.Logits.Count);
        Assert.All(result.Logits, l => Assert.Equal(new long[] { 2, 7 }, l.shape));
        Assert.Equal(new long[] { 2, 7 }, result.Readout.shape);
        long size = 64;
        for (var i = 0; i < model.Layers.Count; i++)
        {
            size = model.Layers[i].OutputSize(size);
            for (var step = 0; step < 4; step++)
            {
                Assert.Equal(new[] { 2, model.Layers[i].OutChannels, size, size }, seen[(model.LayerNames[i], step)]);
            }
        }
    }

    [Fact]
    public void The_small_stem_keeps_16_px_maps_after_conv1_at_32_px_where_the_imagenet_stem_keeps_8()
    {
        using var scope = NewDisposeScope();
        long[] SizesAfterEachLayer(ModelSpec spec)
        {
            using var model = ModelFactory.Create(spec);
            var sizes = new Dictionary<string, long>();
            model.Unroll(randn(1, 3, 32, 32), steps: 1, tap: (layer, _, output) => sizes[layer] = output.shape[2]);
            return [.. sizes.Values];
        }
        var basenet = ModelPresets.Load("basenet", inputSize: 32, classes: 4, width: 0.25);

        Assert.Equal(new long[] { 8, 4, 2, 1, 1 }, SizesAfterEachLayer(basenet));
        Assert.Equal(new long[] { 16, 8, 4, 2, 1 }, SizesAfterEachLayer(basenet with { Stem = StemKind.Small }));

        // ResNet's small stem is the CIFAR one: conv1 3×3 stride 1 and no max-pool.
        var resnet = ModelPresets.Load("resnet18", inputSize: 32, classes: 4, width: 0.25);
        Assert.Equal(new long[] { 8, 4, 2, 1 }, SizesAfterEachLayer(resnet));
        Assert.Equal(new long[] { 32, 16, 8, 4 }, SizesAfterEachLayer(resnet with { Stem = StemKind.Small }));
    }

    [Fact]
    public void The_image_reaches_the_logits_only_after_one_step_per_layer()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(2);
        using var model = (ConvRnnModel)ModelFactory.Create("basenet", inputSize: 64, classes: 5, width: 0.25);
        var a = model.Unroll(randn(1, 3, 64, 64), steps: 8);
        var b = model.Unroll(randn(1, 3, 64, 64), steps: 8);

        // Biological unrolling: 5 layers + decoder, so logits depend on the image from step 5 on.
        for (var t = 0; t < 5; t++) Assert.True(a.Logits[t].allclose(b.Logits[t]), $"step {t} should not see the image yet");
        for (var t = 5; t < 8; t++) Assert.False(a.Logits[t].allclose(b.Logits[t]), $"step {t} should see the image");
        Assert.Equal(6, model.MinimalSteps);
    }

    [Fact]
    public void A_feedforward_model_unrolled_equals_its_plain_forward_pass_once_the_image_has_arrived()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(3);
        using var model = (ConvRnnModel)ModelFactory.Create("basenet", inputSize: 64, classes: 5, width: 0.25);
        var images = randn(2, 3, 64, 64);

        var unrolled = model.Unroll(images, steps: 6).Readout;

        Assert.True(unrolled.allclose(model.FeedForward(images), rtol: 1e-5, atol: 1e-6));
    }

    [Fact]
    public void Presentation_shows_the_image_until_image_off_then_mean_gray()
    {
        using var scope = NewDisposeScope();
        var images = ones(1, 3, 4, 4);
        var p = ImagePresentation.From(TimeSpec.Neural);

        Assert.Equal(26, p.Steps);
        Assert.True(p.Frame(images, 9).Equals(images));
        Assert.Equal(0, p.Frame(images, 10).abs().sum().ToSingle());
        Assert.Equal((16, 12), (TimeSpec.TrainingShallow.Steps, TimeSpec.TrainingShallow.ImageOff!.Value));
        Assert.Equal(17, TimeSpec.TrainingIntermediate.Steps);
    }

    [Fact]
    public void Readouts_choose_last_window_most_confident_and_first_confident_steps()
    {
        using var scope = NewDisposeScope();
        // Two examples, three steps, two classes.
        Tensor[] logits = [tensor(new float[] { 0, 0, 5, 0 }).view(2, 2), tensor(new float[] { 4, 0, 0, 0 }).view(2, 2), tensor(new float[] { 1, 0, 0, 1 }).view(2, 2)];

        var last = Readouts.Apply(new ReadoutSpec(), logits);
        var mean = Readouts.Apply(new ReadoutSpec { Kind = ReadoutKind.Mean, From = 1 }, logits);
        var sum = Readouts.Apply(new ReadoutSpec { Kind = ReadoutKind.Sum }, logits);
        var confident = Readouts.Apply(new ReadoutSpec { Kind = ReadoutKind.MaxConfidence }, logits);
        var threshold = Readouts.Apply(new ReadoutSpec { Kind = ReadoutKind.Threshold, Threshold = 0.95 }, logits);

        Assert.Equal([1f, 0, 0, 1], Values(last.Logits));
        Assert.Equal([2.5f, 0, 0, 0.5f], Values(mean.Logits));
        Assert.Equal([5f, 0, 5, 1], Values(sum.Logits));
        Assert.Equal([1L, 0], confident.Step.data<long>().ToArray());
        Assert.Equal([4f, 0, 5, 0], Values(confident.Logits));
        // Example 0 first reaches 0.95 at step 1 (softmax of 4 vs 0 is 0.982); example 1 at step 0.
        Assert.Equal([1L, 0], threshold.Step.data<long>().ToArray());
    }

    private static float[] Values(Tensor t) => t.contiguous().data<float>().ToArray();

    [Fact]
    public void A_threshold_never_reached_falls_back_to_the_last_step()
    {
        using var scope = NewDisposeScope();
        Tensor[] logits = [zeros(1, 3), zeros(1, 3), ones(1, 3)];

        var r = Readouts.Apply(new ReadoutSpec { Kind = ReadoutKind.Threshold, Threshold = 0.9 }, logits);

        Assert.Equal(2, r.Step.ToInt64());
    }

    [Fact]
    public void Minimal_unroll_counts_the_longest_path_through_feedback()
    {
        Assert.Equal(6, MinimalUnroll.Steps(ModelPresets.Load("basenet")));
        // The RGC's state-updating weights reach its output two steps after its state first holds the image.
        Assert.Equal(8, MinimalUnroll.Steps(ModelPresets.Load("rgc-shallow")));
        Assert.Equal(7, MinimalUnroll.Steps(ModelPresets.Load("gru-shallow")));
        Assert.Equal(13, MinimalUnroll.Steps(ModelPresets.Load("rgc-intermediate")));
        // conv8 → conv5 (layer 7 → 4): conv8 sees the image at step 7, conv5's output at 8 reaches the decoder 6 steps later.
        Assert.Equal(15, MinimalUnroll.Steps(ModelPresets.Load("rgc-median")));
        Assert.Equal(1, MinimalUnroll.Steps(ModelPresets.Load("resnet18")));
    }

    [Fact]
    public void A_disabled_feedback_edge_is_absent_from_the_model_and_its_json_unchanged_when_enabled()
    {
        var median = ModelPresets.Load("rgc-median", inputSize: 64, classes: 10, width: 0.125);
        var withoutFirst = median with { Feedback = [.. median.Feedback.Skip(1)] };
        var disabledFirst = median with { Feedback = [median.Feedback[0] with { Disabled = true }, .. median.Feedback.Skip(1)] };

        Assert.Equal(ModelFactory.CountParameters(withoutFirst), ModelFactory.CountParameters(disabledFirst));
        Assert.True(ModelFactory.CountParameters(median) > ModelFactory.CountParameters(disabledFirst));
        // conv8 → conv5 was the longest feedback path: without it the minimal unroll is shorter.
        Assert.Equal(MinimalUnroll.Steps(withoutFirst), MinimalUnroll.Steps(disabledFirst));
        Assert.DoesNotContain("disabled", System.Text.Json.JsonSerializer.Serialize(median, PipelineJson.Options), StringComparison.Ordinal);
        Assert.Contains("\"disabled\": true", System.Text.Json.JsonSerializer.Serialize(disabledFirst, PipelineJson.Options), StringComparison.Ordinal);
    }

    [Fact]
    public void The_same_seed_gives_the_same_model_and_outputs()
    {
        using var scope = NewDisposeScope();
        var images = randn(2, 3, 64, 64);
        Tensor Run(int seed)
        {
            torch.manual_seed(seed);
            using var model = ModelFactory.Create("rgc-shallow", inputSize: 64, classes: 4, width: 0.125);
            return model.Unroll(images, steps: 7).Readout.detach().clone();
        }

        Assert.True(Run(5).Equals(Run(5)));
        Assert.False(Run(5).Equals(Run(6)));
    }

    [Fact]
    public void A_bad_spec_is_rejected_with_the_field_named()
    {
        var spec = ModelPresets.Load("rgc-median") with { Feedback = [new FeedbackSpec { From = "conv2", To = "conv9" }, new FeedbackSpec { From = "conv99", To = "conv1" }] };

        var e = Assert.Throws<ModelSpecException>(() => ModelFactory.Create(spec with { Width = -1 }));

        Assert.Contains(e.Errors, x => x.Field == "width");
        Assert.Contains(e.Errors, x => x.Field == "feedback[0]");
        Assert.Contains(e.Errors, x => x.Field == "feedback[1].from");
        Assert.Contains("no model preset", Assert.Throws<ModelSpecException>(() => ModelPresets.Load("nope")).Message, StringComparison.Ordinal);
    }
}

public class ModelStatsTests
{
    [Fact]
    public void Multiply_adds_count_every_conv_at_every_step()
    {
        using var model = ModelFactory.Create("basenet", inputSize: 224, classes: 1000);

        // conv1 7×7/2 → 112², conv2…conv5 3×3 at 56², 28², 14², 7², decoder 2×2 at 2² (after the 3² map): one step.
        long perStep = (112L * 112 * 64 * 3 * 49) + (56L * 56 * 128 * 64 * 9) + (28L * 28 * 256 * 128 * 9) +
                       (14L * 14 * 256 * 256 * 9) + (7L * 7 * 512 * 256 * 9) + (2L * 2 * 1000 * 512 * 4);
        Assert.Equal(perStep * 16, ModelStats.MultiplyAdds(model, 16));
    }

    [Fact]
    public void Resnet18_multiply_adds_match_the_published_1_8_giga()
    {
        using var model = ModelFactory.Create("resnet18", inputSize: 224, classes: 1000);

        var macs = ModelStats.MultiplyAdds(model, model.DefaultSteps);

        Assert.InRange(macs, 1.80e9, 1.83e9);
    }
}

public class PaperConfigurationTests
{
    [Fact]
    public void The_median_convrnn_has_about_three_quarters_of_resnet34s_parameters()
    {
        using var median = ModelFactory.Create("rgc-median", inputSize: 224, classes: 1000);
        using var resnet34 = ModelFactory.Create("resnet34", inputSize: 224, classes: 1000);

        var ratio = ModelStats.Parameters(median.Module) / (double)ModelStats.Parameters(resnet34.Module);

        Assert.InRange(ratio, 0.65, 0.80);
    }

    [Theory]
    [InlineData("basenet-wide")]
    [InlineData("basenet-deep")]
    public void Parameter_matched_controls_are_within_five_percent_of_their_target(string preset)
    {
        var spec = ModelPresets.Load(preset, inputSize: 128, classes: 10, width: 0.25);
        using var control = ModelFactory.Create(spec);
        using var target = ModelFactory.Create(spec.Match!.Target, inputSize: 128, classes: 10, width: 0.25);

        var ratio = ModelStats.Parameters(control.Module) / (double)ModelStats.Parameters(target.Module);

        Assert.InRange(ratio, 0.95, 1.05);
        Assert.Null(control.Spec.Match);
        Assert.Equal(preset == "basenet-deep", control.Spec.Layers.Count > 5);
        Assert.Equal(preset == "basenet-wide", control.Spec.Width > 0.25);
    }

    [Fact]
    public void Variance_scaling_draws_weights_with_variance_scale_over_fan_in_and_zero_biases()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(2);
        var spec = ModelPresets.Load("rgc-shallow", 64, 10, 0.25) with { Init = new InitSpec { Kind = InitKind.VarianceScaling, Scale = 0.639 } };
        using var model = ModelFactory.Create(spec);

        foreach (var (name, p) in model.Module.named_parameters())
        {
            if (p.dim() >= 2 && p.numel() >= 2000)
            {
                var fanIn = p.numel() / p.shape[0];
                Assert.Equal(Math.Sqrt(0.639 / fanIn), p.std().ToDouble(), Math.Sqrt(0.639 / fanIn) * 0.1);
                Assert.True(p.abs().max().ToDouble() <= 2 * Math.Sqrt(0.639 / fanIn) / 0.8796 + 1e-6, name);
            }
            else if (name.EndsWith("bias", StringComparison.Ordinal))
            {
                Assert.Equal(0, p.abs().max().ToDouble());
            }
        }
    }
}
