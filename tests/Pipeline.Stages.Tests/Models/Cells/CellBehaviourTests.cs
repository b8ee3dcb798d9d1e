using Pipeline.Stages.Models.Cells;
using TorchSharp;
using static Pipeline.Stages.Tests.Models.Cells.CellTestKit;
using static TorchSharp.torch;

namespace Pipeline.Stages.Tests.Models.Cells;

/// <summary>What every cell must do, whatever its equations.</summary>
[Collection(TorchGlobalStateCollection.Name)]
public class CellBehaviourTests
{
    public static TheoryData<string> Cells => All();

    [Theory]
    [MemberData(nameof(Cells))]
    public void Outputs_and_states_keep_their_shapes_over_steps_at_two_sizes(string name)
    {
        Seed();
        using var cell = Build(name);
        foreach (var (height, width) in new[] { (7L, 7L), (4L, 9L) })
        {
            using var scope = torch.NewDisposeScope();
            var zero = cell.ZeroState(Batch, height, width, CPU, ScalarType.Float32);
            var (outputs, state) = Unroll(cell, Inputs(4, height, width));
            Assert.Equal(4, outputs.Count);
            foreach (var y in outputs)
                Assert.Equal(new[] { Batch, cell.OutChannels, height, width }, y.shape);
            Assert.Equal(zero.Length, state.Length);
            for (var i = 0; i < state.Length; i++)
            {
                Assert.Equal(zero[i].shape, state[i].shape);
                Assert.True(torch.isfinite(state[i]).all().ToBoolean());
            }
        }
    }

    [Theory]
    [MemberData(nameof(Cells))]
    public void The_same_seed_gives_the_same_weights_and_outputs(string name)
    {
        float[] Run()
        {
            Seed(11);
            using var cell = Build(name);
            using var scope = torch.NewDisposeScope();
            var xs = Inputs(3, 5, 6);
            var (outputs, _) = Unroll(cell, xs, torch.randn(Batch, ResidualChannels, 5, 6));
            return torch.stack(outputs).data<float>().ToArray();
        }
        Assert.Equal(Run(), Run());
    }

    [Theory]
    [MemberData(nameof(Cells))]
    public void Gradients_reach_every_parameter_after_a_few_steps(string name)
    {
        Seed();
        using var cell = Build(name);
        if (cell is TimeDecayCell)
        {
            // d = 0 at init would still get a gradient (∂s'/∂d = s), but make the state non-trivial anyway.
            using var _ = torch.no_grad();
            cell.parameters().Single().fill_(0.3);
        }
        using var scope = torch.NewDisposeScope();
        var (outputs, _) = Unroll(cell, Inputs(3, 5, 5), torch.randn(Batch, ResidualChannels, 5, 5));
        var loss = outputs.Select(y => y.pow(2).mean()).Aggregate((a, b) => a + b);
        loss.backward();
        foreach (var (pname, p) in cell.named_parameters())
        {
            Assert.True(p.grad is not null, $"{pname} has no gradient");
            Assert.True(p.grad!.abs().sum().ToDouble() > 0, $"{pname} has an all-zero gradient");
        }
    }

    [Theory]
    [MemberData(nameof(Cells))]
    public void Zero_input_and_zero_state_stay_zero_with_zero_biases(string name)
    {
        // Biases start at zero (TF's zeros initializer); the constant +1 gate offsets only scale zeros, layer norm of
        // zeros is zero (shift 0), elu(0) = tanh(0) = relu(0) = 0, and the RGC's h_in, c_in are zero.
        Seed();
        using var cell = Build(name);
        using var scope = torch.NewDisposeScope();
        var xs = Enumerable.Range(0, 3).Select(_ => torch.zeros(Batch, Channels, 5, 5)).ToList();
        var (outputs, state) = Unroll(cell, xs, torch.zeros(Batch, ResidualChannels, 5, 5));
        foreach (var t in outputs.Concat(state))
            Assert.Equal(0.0, t.abs().max().ToDouble());
    }

    [Fact]
    public void Feedback_at_the_output_is_added_to_what_a_gated_cell_emits_but_not_to_its_state()
    {
        Seed();
        using var cell = Build("gru");
        using var scope = torch.NewDisposeScope();
        var x = torch.randn(Batch, Channels, 5, 5);
        var fb = torch.randn(Batch, Channels, 5, 5);
        var zero = cell.ZeroState(Batch, 5, 5, CPU, ScalarType.Float32);
        var (plain, plainState) = cell.Step(x, zero, default);
        var (withFb, fbState) = cell.Step(x, zero, new CellExtras(null, fb));
        AssertClose(plain + fb, withFb);
        AssertClose(plainState[0], fbState[0]);
    }

    [Fact]
    public void Time_decay_starts_at_zero_so_each_step_emits_its_input()
    {
        Seed();
        using var cell = new TimeDecayCell(Channels, Channels);
        Assert.Equal(0.0, cell.Decay);
        using var scope = torch.NewDisposeScope();
        var xs = Inputs(4, 5, 5);
        var (outputs, _) = Unroll(cell, xs);
        for (var t = 0; t < xs.Count; t++)
            AssertClose(xs[t], outputs[t], 0);

        using (torch.no_grad())
            cell.parameters().Single().fill_(0.5);
        var (decayed, _) = Unroll(cell, xs);
        AssertClose(xs[0] * 0.25 + xs[1] * 0.5 + xs[2], decayed[2]);
    }

    [Fact]
    public void Cells_built_inside_a_dispose_scope_keep_their_parameters()
    {
        Seed();
        RecurrentCell[] cells;
        using (torch.NewDisposeScope())
            cells = [Build("time_decay"), Build("lstm_peep_ln"), Build("rgc_median"), Build("simple_rnn_ln")];
        using var scope = torch.NewDisposeScope();
        foreach (var cell in cells)
        {
            foreach (var p in cell.parameters())
                Assert.False(p.IsInvalid);
            var (outputs, _) = Unroll(cell, Inputs(2, 4, 4));
            Assert.True(torch.isfinite(outputs[1]).all().ToBoolean());
            cell.Dispose();
        }
    }

    [Fact]
    public void Parameter_counts_match_the_arithmetic()
    {
        Seed();
        // GRU, k = 3, C_in = C_out = 8. gates: conv [x,h] (16 ch) → r,u (16 ch): 16·16·9 + 16 = 2,320;
        // candidate: 16 → 8: 16·8·9 + 8 = 1,160. Total 3,480.
        using (var gru = new ConvGruCell(8, 8, 3))
            Assert.Equal(16 * 16 * 9 + 16 + (16 * 8 * 9 + 8), ParameterCount(gru));
        Assert.Equal(3480, 16 * 16 * 9 + 16 + (16 * 8 * 9 + 8));

        // LSTM, k = 3, C_in = 4, C_out = 8, peepholes + layer norm. conv [x,h] (12 ch) → i,f,g,o (32 ch):
        // 12·32·9 + 32 = 3,488; peepholes 3·8 = 24; gate norm gain+shift 2·32 = 64; cell norm 2·8 = 16. Total 3,592.
        using (var lstm = new ConvLstmCell(4, 8, 3, peepholes: true, layerNorm: true))
            Assert.Equal(3592, ParameterCount(lstm));

        // UGRNN 8→8, k = 3: 16·16·9 + 16 = 2,320. IntersectionRNN 8: 16·32·9 + 32 = 4,640.
        // SimpleRNN 8→8 with layer norm: 16·8·9 + 8 + 2·8 = 1,176. TimeDecay: one scalar.
        using (var ugrnn = new UgrnnCell(8, 8, 3))
            Assert.Equal(2320, ParameterCount(ugrnn));
        using (var irnn = new IntersectionRnnCell(8, 8, 3))
            Assert.Equal(4640, ParameterCount(irnn));
        using (var srnn = new SimpleRnnCell(8, 8, 3, layerNorm: true))
            Assert.Equal(1176, ParameterCount(srnn));
        using (var td = new TimeDecayCell(8, 8))
            Assert.Equal(1, ParameterCount(td));

        // RGC shallow, in = out = cell depth = 8, residual 4 channels, 3×3: five 8→8 convs with bias (8·8·9 + 8 = 584
        // each: W_xc, W_cc, W_hc, W_hh, W_ch) + W_rh 4→8 without bias (4·8·9 = 288). Total 3,208.
        using (var shallow = new ReciprocalGatedCell(RgcSpec.Shallow, 8, 8, 4))
            Assert.Equal(5 * 584 + 288, ParameterCount(shallow));

        // RGC median, in = out = 16, cell depth 64, residual 8:
        // W_xc 2×2 16→64: 16·64·4 + 64 = 4,160;   W_xh 3×3 16→16: 16·16·9 + 16 = 2,320;
        // W_cc sep. 7×7 64→64: 64·49 + 64·64 + 64 = 7,296;   W_hc sep. 16→64: 16·49 + 16·64 + 64 = 1,872;
        // W_hh sep. 16→16: 16·49 + 16·16 + 16 = 1,056;       W_ch sep. 64→16: 64·49 + 64·16 + 16 = 4,176;
        // residual projection 1×1 8→16, no bias: 128; no W_rh (the median gate takes no residual). Total 21,008.
        using (var median = new ReciprocalGatedCell(RgcSpec.Median, 16, 16, 8))
            Assert.Equal(21008, ParameterCount(median));
        Assert.Equal(21008, 4160 + 2320 + 7296 + 1872 + 1056 + 4176 + 128);
    }

    [Fact]
    public void State_dict_keys_are_the_documented_names()
    {
        Seed();
        using (var shallow = new ReciprocalGatedCell(RgcSpec.Shallow, 8, 8, 4))
            Assert.Equal(
                new[]
                {
                    "cell_to_cell.bias", "cell_to_cell.weight", "cell_to_out.bias", "cell_to_out.weight",
                    "input_to_cell.bias", "input_to_cell.weight", "out_to_cell.bias", "out_to_cell.weight",
                    "out_to_out.bias", "out_to_out.weight", "residual_to_out_gate.weight",
                },
                shallow.state_dict().Keys.Order(StringComparer.Ordinal));
        using (var median = new ReciprocalGatedCell(RgcSpec.Median, 16, 16, 8))
            Assert.Equal(
                new[]
                {
                    "cell_to_cell.depthwise.weight", "cell_to_cell.pointwise.bias", "cell_to_cell.pointwise.weight",
                    "cell_to_out.depthwise.weight", "cell_to_out.pointwise.bias", "cell_to_out.pointwise.weight",
                    "input_to_cell.bias", "input_to_cell.weight", "input_to_out.bias", "input_to_out.weight",
                    "out_to_cell.depthwise.weight", "out_to_cell.pointwise.bias", "out_to_cell.pointwise.weight",
                    "out_to_out.depthwise.weight", "out_to_out.pointwise.bias", "out_to_out.pointwise.weight",
                    "residual_projection.weight",
                },
                median.state_dict().Keys.Order(StringComparer.Ordinal));
        using (var lstm = new ConvLstmCell(4, 8, 3, peepholes: true, layerNorm: true))
            Assert.Equal(
                new[]
                {
                    "cell_norm.bias", "cell_norm.weight", "conv.bias", "conv.weight", "gate_norm.bias", "gate_norm.weight",
                    "peephole_f", "peephole_i", "peephole_o",
                },
                lstm.state_dict().Keys.Order(StringComparer.Ordinal));
        using (var gru = new ConvGruCell(8, 8))
            Assert.Equal(new[] { "candidate.bias", "candidate.weight", "gates.bias", "gates.weight" },
                gru.state_dict().Keys.Order(StringComparer.Ordinal));
        using (var td = new TimeDecayCell(8, 8))
            Assert.Equal(new[] { "decay" }, td.state_dict().Keys);
    }

    [Fact]
    public void Even_kernels_pad_one_more_at_the_bottom_and_right_like_tensorflow_same()
    {
        Seed();
        using var conv = CellLayers.SameConv(3, 4, 2);
        using var scope = torch.NewDisposeScope();
        var x = torch.randn(1, 3, 5, 6);
        var expected = nn.functional.conv2d(nn.functional.pad(x, [0, 1, 0, 1]), conv.weight!, conv.bias);
        AssertClose(expected, conv.forward(x), 1e-6);
    }
}
