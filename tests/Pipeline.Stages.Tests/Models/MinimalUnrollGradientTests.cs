using Pipeline.Stages.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Pipeline.Stages.Tests.Models;

/// <summary>
/// The minimal unroll, checked by gradients: with every bias zero (so nothing moves before the image arrives), no
/// weight — nor the state-reading half of a cell's conv over [x, h] — is without gradient at T = minimal T, and one
/// step less some are (the deepest layers' weights, a feedback conv, or the state-reading weights of a cell).
/// </summary>
public class MinimalUnrollGradientTests
{
    public MinimalUnrollGradientTests() => torch.set_num_threads(1);

    [Theory]
    [InlineData("basenet")]
    [InlineData("rgc-shallow")]
    [InlineData("lstm-shallow")]
    [InlineData("gru-shallow")]
    [InlineData("ugrnn-shallow")]
    [InlineData("intersectionrnn-shallow")]
    [InlineData("simplernn-shallow")]
    [InlineData("timedecay-shallow")]
    [InlineData("rgc-median")]
    [InlineData("gru-intermediate")]
    public void Every_parameter_gets_a_gradient_at_minimal_T_and_the_deepest_weights_none_below(string preset)
    {
        torch.manual_seed(11);
        using var model = ModelFactory.Create(preset, inputSize: 64, classes: 3, width: 0.0625);
        using (no_grad())
        {
            foreach (var (name, p) in model.Module.named_parameters())
            {
                if (name.EndsWith("bias", StringComparison.Ordinal)) p.zero_();
            }
        }
        var minimal = model.MinimalSteps;

        var atMinimal = GradientlessParameters(model, minimal);
        var beyond = GradientlessParameters(model, minimal + 2);
        var below = GradientlessParameters(model, minimal - 1);

        Assert.True(atMinimal.Count == 0, $"T = {minimal}: weights without gradient: {string.Join(", ", atMinimal)}");
        Assert.True(beyond.Count == 0, $"T = {minimal + 2}: weights without gradient: {string.Join(", ", beyond)}");
        Assert.NotEmpty(below);
    }

    private static List<string> GradientlessParameters(IVisionModel model, int steps)
    {
        using var scope = NewDisposeScope();
        model.Module.zero_grad();
        torch.manual_seed(12);
        var images = randn(2, 3, 64, 64);
        var readout = model.Unroll(images, steps).Readout;
        nn.functional.cross_entropy(readout, tensor(new long[] { 0, 2 })).backward();
        var unused = new List<string>();
        foreach (var (name, p) in model.Module.named_parameters())
        {
            var g = p.grad;
            if (g is null || g.count_nonzero().ToInt64() == 0) unused.Add(name);
            // Cells convolve cat([x, h]) in one conv: its second half of input channels reads the state.
            else if (name.Contains(".cell.", StringComparison.Ordinal) && g.dim() == 4 && g.shape[1] % 2 == 0 &&
                     g.narrow(1, g.shape[1] / 2, g.shape[1] / 2).count_nonzero().ToInt64() == 0)
            {
                unused.Add(name + "[h]");
            }
        }
        return unused;
    }
}
