using Pipeline.Stages.Models.Cells;
using TorchSharp;
using static Pipeline.Stages.Tests.Models.Cells.CellTestKit;
using static TorchSharp.torch;

namespace Pipeline.Stages.Tests.Models.Cells;

/// <summary>GRU and LSTM steps against the textbook equations written out by hand with the cells' own weights.</summary>
[Collection(TorchGlobalStateCollection.Name)]
public class GatedCellReferenceTests
{
    private static Tensor Sigmoid(Tensor t) => 1 / (1 + (-t).exp());

    private static Tensor Conv(Tensor x, Tensor weight, Tensor bias)
    {
        var k = weight.shape[2];
        return nn.functional.conv2d(x, weight, bias, padding: [k / 2, k / 2]);
    }

    [Fact]
    public void Gru_step_matches_the_equations()
    {
        Seed();
        using var cell = new ConvGruCell(Channels, Channels, 3);
        using (torch.no_grad())
            foreach (var p in cell.parameters())
                p.normal_(0, 0.2); // non-zero biases too, so the +1 on r is checked against a real bias
        using var scope = torch.NewDisposeScope();
        var p_ = Parameters(cell);
        var (wg, bg, wc, bc) = (p_["gates.weight"], p_["gates.bias"], p_["candidate.weight"], p_["candidate.bias"]);
        var h = torch.randn(Batch, Channels, 5, 7);
        foreach (var x in Inputs(3, 5, 7))
        {
            var (y, state) = cell.Step(x, [h], default);
            // Weights split by hand: rows 0..C−1 are r, C..2C−1 are u; columns 0..C_in−1 read x, the rest h.
            var r = Sigmoid(Conv(x, wg[..(int)Channels, ..(int)Channels], bg[..(int)Channels])
                            + Conv(h, wg[..(int)Channels, (int)Channels..], torch.zeros(Channels)) + 1);
            var u = Sigmoid(Conv(x, wg[(int)Channels.., ..(int)Channels], bg[(int)Channels..])
                            + Conv(h, wg[(int)Channels.., (int)Channels..], torch.zeros(Channels)));
            var c = (Conv(x, wc[.., ..(int)Channels], bc) + Conv(r * h, wc[.., (int)Channels..], torch.zeros(Channels))).tanh();
            var expected = u * h + (1 - u) * c;
            AssertClose(expected, y);
            AssertClose(expected, state[0]);
            h = state[0];
        }
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void Lstm_step_matches_the_equations(bool peepholes, bool layerNorm)
    {
        Seed();
        using var cell = new ConvLstmCell(Channels, Channels, 3, peepholes, layerNorm);
        using (torch.no_grad())
            foreach (var p in cell.parameters())
                p.add_(torch.randn_like(p) * 0.2);
        using var scope = torch.NewDisposeScope();
        var p_ = Parameters(cell);
        Tensor Ln(Tensor t, string name)
        {
            if (!layerNorm)
                return t;
            var mean = t.mean([1, 2, 3], keepdim: true);
            var variance = (t - mean).pow(2).mean([1, 2, 3], keepdim: true);
            return (t - mean) / (variance + 1e-5).sqrt() * p_[name + ".weight"] + p_[name + ".bias"];
        }
        var gateNormW = layerNorm ? p_["gate_norm.weight"].chunk(4, 0) : null;
        var gateNormB = layerNorm ? p_["gate_norm.bias"].chunk(4, 0) : null;
        Tensor GateLn(Tensor t, int i)
        {
            if (!layerNorm)
                return t;
            var mean = t.mean([1, 2, 3], keepdim: true);
            var variance = (t - mean).pow(2).mean([1, 2, 3], keepdim: true);
            return (t - mean) / (variance + 1e-5).sqrt() * gateNormW![i] + gateNormB![i];
        }
        Tensor Peep(string g, Tensor c) => peepholes ? p_["peephole_" + g] * c : torch.zeros(1);

        var w = p_["conv.weight"].chunk(4, 0);
        var b = p_["conv.bias"].chunk(4, 0);
        var (h, c) = (torch.randn(Batch, Channels, 6, 4), torch.randn(Batch, Channels, 6, 4));
        foreach (var x in Inputs(3, 6, 4))
        {
            var (y, state) = cell.Step(x, [h, c], default);
            var xh = torch.cat([x, h], 1);
            var i = Sigmoid(GateLn(Conv(xh, w[0], b[0]), 0) + Peep("i", c));
            var f = Sigmoid(GateLn(Conv(xh, w[1], b[1]), 1) + 1 + Peep("f", c));
            var g = GateLn(Conv(xh, w[2], b[2]), 2).tanh();
            var o = Sigmoid(GateLn(Conv(xh, w[3], b[3]), 3) + Peep("o", c));
            var cNext = Ln(f * c + i * g, "cell_norm");
            var hNext = o * cNext.tanh();
            AssertClose(hNext, y, 1e-4);
            AssertClose(hNext, state[0], 1e-4);
            AssertClose(cNext, state[1], 1e-4);
            (h, c) = (state[0], state[1]);
        }
    }

    [Fact]
    public void Lstm_forget_bias_is_one_at_init()
    {
        // Zero input and h, cell state c0: all gate pre-activations are the (zero) conv biases, so
        // c' = σ(0 + 1)·c0 + σ(0)·tanh(0) = σ(1)·c0 — with and without (zero-initialised) peepholes.
        Seed();
        foreach (var peepholes in new[] { false, true })
        {
            using var cell = new ConvLstmCell(Channels, Channels, 3, peepholes);
            using var scope = torch.NewDisposeScope();
            Assert.Equal(0.0, Parameters(cell)["conv.bias"].abs().max().ToDouble());
            var c0 = torch.randn(Batch, Channels, 4, 4);
            var (h, state) = cell.Step(torch.zeros(Batch, Channels, 4, 4), [torch.zeros(Batch, Channels, 4, 4), c0], default);
            var sigmoidOne = 1 / (1 + Math.Exp(-1));
            AssertClose(c0 * sigmoidOne, state[1]);
            AssertClose((c0 * sigmoidOne).tanh() * 0.5, h);
        }
    }

    [Fact]
    public void Intersection_rnn_with_unequal_channels_is_refused_with_a_clear_error()
    {
        var e = Assert.Throws<ArgumentException>(() => new IntersectionRnnCell(8, 16));
        Assert.Contains("in channels (8) must equal out channels (16)", e.Message, StringComparison.Ordinal);
    }
}
