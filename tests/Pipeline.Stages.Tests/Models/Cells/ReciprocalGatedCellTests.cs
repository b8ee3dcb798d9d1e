using Pipeline.Stages.Models.Cells;
using TorchSharp;
using static Pipeline.Stages.Tests.Models.Cells.CellTestKit;
using static TorchSharp.torch;

namespace Pipeline.Stages.Tests.Models.Cells;

[Collection(TorchGlobalStateCollection.Name)]
public class ReciprocalGatedCellTests
{
    public static TheoryData<string> Variants => new() { "shallow", "median", "shallow_tanh_no_residual" };

    private static RgcSpec Variant(string name) => name switch
    {
        "shallow" => RgcSpec.Shallow,
        "median" => RgcSpec.Median with { CellDepth = 16 },
        "shallow_tanh_no_residual" => RgcSpec.Shallow with { GateActivation = GateActivation.Tanh, OutResidual = false },
        _ => throw new ArgumentException(name),
    };

    /// <summary>CONVRNN.md's RGC equations written out op by op with the cell's own weights, every conv separate.</summary>
    private static (Tensor H, Tensor C) ReferenceStep(RgcSpec spec, Dictionary<string, Tensor> p, Tensor x, Tensor h, Tensor c, Tensor res, Tensor? fb)
    {
        Tensor Conv(string name, Tensor input)
        {
            if (p.TryGetValue(name + ".depthwise.weight", out var dw))
            {
                var k = dw.shape[2];
                var mid = nn.functional.conv2d(input, dw, null, padding: [k / 2, k / 2], groups: input.shape[1]);
                return nn.functional.conv2d(mid, p[name + ".pointwise.weight"], p.GetValueOrDefault(name + ".pointwise.bias"));
            }
            var w = p[name + ".weight"];
            var kk = w.shape[2];
            // TF "SAME": total padding k−1, the extra row/column at the bottom/right.
            var padded = nn.functional.pad(input, [(kk - 1) / 2, kk / 2, (kk - 1) / 2, kk / 2]);
            return nn.functional.conv2d(padded, w, p.GetValueOrDefault(name + ".bias"));
        }
        Tensor F(GateActivation f, Tensor t) => f == GateActivation.Sigmoid ? 1 / (1 + (-t).exp()) : t.tanh();
        Tensor Elu(Tensor t) => torch.where(t > 0, t, t.exp() - 1);

        var cIn = Conv("input_to_cell", x);
        var tauC = F(spec.TauActivation, Conv("cell_to_cell", c));
        var gateC = F(spec.GateActivation, Conv("out_to_cell", h));
        var cNext = Elu((spec.ATau + spec.KTau * tauC) * c + (spec.AGate + spec.KGate * gateC) * cIn);

        var hIn = spec.InputToOutKernel is null ? x : Conv("input_to_out", x);
        if (spec.ResidualIntoOutput)
            hIn = hIn + (p.ContainsKey("residual_projection.weight") ? Conv("residual_projection", res) : res);
        if (fb is not null)
            hIn = hIn + fb;
        var tauH = F(spec.TauActivation, Conv("out_to_out", h));
        var gatePre = Conv("cell_to_out", c); // the old c (see ReciprocalGatedCell)
        if (spec.OutResidual && spec.ResidualIntoGate)
            gatePre = gatePre + Conv("residual_to_out_gate", res);
        var hNext = Elu((spec.ATau + spec.KTau * tauH) * h + (spec.AGate + spec.KGate * F(spec.GateActivation, gatePre)) * hIn);
        return (hNext, cNext);
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void Rgc_steps_and_gradients_match_the_equations_written_out(string variant)
    {
        Seed();
        var spec = Variant(variant);
        using var cell = new ReciprocalGatedCell(spec, Channels, Channels, ResidualChannels);
        using var scope = torch.NewDisposeScope();
        var xs = Inputs(3, 5, 6);
        var res = torch.randn(Batch, ResidualChannels, 5, 6);
        var fb = torch.randn(Batch, Channels, 5, 6);
        var p = Parameters(cell);

        var state = cell.ZeroState(Batch, 5, 6, CPU, ScalarType.Float32);
        var (h, c) = (state[0], state[1]);
        Tensor loss = torch.zeros(1), refLoss = torch.zeros(1);
        foreach (var x in xs)
        {
            var (y, next) = cell.Step(x, state, new CellExtras(res, fb));
            (h, c) = ReferenceStep(spec, p, x, h, c, res, fb);
            AssertClose(h, y);
            AssertClose(c, next[1]);
            state = next;
            loss = loss + y.pow(2).mean();
            refLoss = refLoss + h.pow(2).mean();
        }
        var grads = torch.autograd.grad([loss], p.Values.ToList());
        var refGrads = torch.autograd.grad([refLoss], p.Values.ToList());
        foreach (var ((name, _), g, rg) in p.Zip(grads, refGrads))
        {
            Assert.True(torch.isfinite(g).all().ToBoolean(), $"{name}: non-finite gradient");
            var diff = (rg - g).abs().max().ToDouble();
            Assert.True(diff <= 1e-4 * Math.Max(1, rg.abs().max().ToDouble()), $"{name}: gradient differs from the reference by {diff}");
        }
    }

    /// <summary>
    /// CONVRNN.md "Bypass": with zero states and zero biases the first step is h = act_h((a_g + k_g·f_g(0))·h_in), with no
    /// recurrent weight involved. Conditions, precisely: every conv bias is zeroed; states are zero, so the τ terms
    /// multiply zeros and the gates read f(W·0 + 0) = f(0). The shallow cell's residual enters the output gate
    /// (W_rh·res), so the gate is f_g(0) only if that term vanishes: the test uses a zero residual, and separately a cell
    /// without the residual path. The median cell's residual is added to h_in instead (projected 1×1), not to the gate,
    /// so there a non-zero residual is fine and is part of h_in.
    /// </summary>
    [Fact]
    public void Rgc_first_step_bypasses_recurrent_weights()
    {
        Seed();
        using var scope = torch.NewDisposeScope();
        var x = torch.randn(Batch, Channels, 6, 5);

        // Shallow: h_in = x, sigmoid gate: h = elu(0.5·x).
        foreach (var (spec, res) in new[]
                 {
                     (RgcSpec.Shallow, torch.zeros(Batch, ResidualChannels, 6, 5)),
                     (RgcSpec.Shallow with { OutResidual = false }, (Tensor?)null),
                 })
        {
            using var cell = new ReciprocalGatedCell(spec, Channels, Channels, ResidualChannels);
            ZeroBiases(cell);
            var (h, state) = cell.Step(x, cell.ZeroState(Batch, 6, 5, CPU, ScalarType.Float32), new CellExtras(res, null));
            AssertClose(nn.functional.elu(0.5 * x, 1.0), h);
            Assert.Equal(h.shape, state[0].shape);

            // The same output whatever the recurrent weights are (biases stay zero).
            using (torch.no_grad())
                foreach (var (n, p) in cell.named_parameters())
                    if (!n.StartsWith("input_to", StringComparison.Ordinal) && n.EndsWith("weight", StringComparison.Ordinal))
                        p.normal_(0, 3);
            var (again, _) = cell.Step(x, cell.ZeroState(Batch, 6, 5, CPU, ScalarType.Float32), new CellExtras(res, null));
            AssertClose(h, again);
        }

        // Median: h_in = W_xh*x + P·res, tanh gate: h = elu((0.7007 + (−0.7007)·tanh(0))·h_in) = elu(0.7007·h_in).
        {
            var spec = RgcSpec.Median with { CellDepth = 16 };
            using var cell = new ReciprocalGatedCell(spec, Channels, Channels, ResidualChannels);
            ZeroBiases(cell);
            var res = torch.randn(Batch, ResidualChannels, 6, 5);
            var p = Parameters(cell);
            var hIn = nn.functional.conv2d(x, p["input_to_out.weight"], null, padding: [1L, 1L])
                      + nn.functional.conv2d(res, p["residual_projection.weight"]);
            var (h, _) = cell.Step(x, cell.ZeroState(Batch, 6, 5, CPU, ScalarType.Float32), new CellExtras(res, null));
            AssertClose(nn.functional.elu(spec.AGate * hIn, 1.0), h);
        }
    }

    [Fact]
    public void Rgc_without_an_input_to_output_conv_needs_equal_channels()
    {
        var e = Assert.Throws<ArgumentException>(() => new ReciprocalGatedCell(RgcSpec.Shallow, 8, 16, 8));
        Assert.Contains("in channels (8) must equal out channels (16)", e.Message, StringComparison.Ordinal);
        using var ok = new ReciprocalGatedCell(RgcSpec.Shallow with { InputToOutKernel = 3 }, 8, 16, 8);
        Assert.Equal(16, ok.OutChannels);
    }

    [Fact]
    public void Rgc_with_a_residual_path_refuses_a_step_without_the_residual()
    {
        Seed();
        using var cell = new ReciprocalGatedCell(RgcSpec.Shallow, Channels, Channels, ResidualChannels);
        using var scope = torch.NewDisposeScope();
        var e = Assert.Throws<ArgumentException>(() =>
            cell.Step(torch.randn(1, Channels, 4, 4), cell.ZeroState(1, 4, 4, CPU, ScalarType.Float32), default));
        Assert.Contains("extras.Residual", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Rgc_feedback_at_the_output_enters_h_in()
    {
        // First step, zero biases and states, shallow without residual: h = elu(0.5·(x + fb)).
        Seed();
        using var cell = new ReciprocalGatedCell(RgcSpec.Shallow with { OutResidual = false }, Channels, Channels, 0);
        using var scope = torch.NewDisposeScope();
        var x = torch.randn(Batch, Channels, 4, 4);
        var fb = torch.randn(Batch, Channels, 4, 4);
        var (h, _) = cell.Step(x, cell.ZeroState(Batch, 4, 4, CPU, ScalarType.Float32), new CellExtras(null, fb));
        AssertClose(nn.functional.elu(0.5 * (x + fb), 1.0), h);
    }

    [Fact]
    public void Fused_state_convs_give_the_same_outputs_and_gradients_as_one_conv_per_weight()
    {
        Seed();
        using var fused = new ReciprocalGatedCell(RgcSpec.Shallow, Channels, Channels, ResidualChannels, "rgc", fuseStateConvs: true);
        using var plain = new ReciprocalGatedCell(RgcSpec.Shallow, Channels, Channels, ResidualChannels, "rgc", fuseStateConvs: false);
        plain.load_state_dict(fused.state_dict());
        using var scope = torch.NewDisposeScope();
        var xs = Inputs(3, 6, 6);
        var res = torch.randn(Batch, ResidualChannels, 6, 6);
        var (a, _) = Unroll(fused, xs, res);
        var (b, _) = Unroll(plain, xs, res);
        for (var t = 0; t < a.Count; t++)
            AssertClose(b[t], a[t]);
        a.Select(y => y.pow(2).mean()).Aggregate((u, v) => u + v).backward();
        b.Select(y => y.pow(2).mean()).Aggregate((u, v) => u + v).backward();
        var plainGrads = plain.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!);
        foreach (var (name, p) in fused.named_parameters())
            AssertClose(plainGrads[name], p.grad!, 1e-5);
    }
}
