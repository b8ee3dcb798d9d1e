using Pipeline.Stages.Models.Cells;
using TorchSharp;
using static Pipeline.Stages.Tests.Models.Cells.CellTestKit;
using static TorchSharp.torch;

namespace Pipeline.Stages.Tests.Models.Cells;

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
}
