using Pipeline.Stages.Models.Cells;

namespace Pipeline.Stages.Tests.Models.Cells;

[Collection(TorchGlobalStateCollection.Name)]
public class CellFactoryTests
{
    [Fact]
    public void No_cell_type_means_no_cell()
    {
        Assert.Null(CellFactory.Create("conv1", new CellSpec(), 8, 8, 8));
    }

    [Theory]
    [InlineData(CellType.TimeDecay, typeof(TimeDecayCell))]
    [InlineData(CellType.SimpleRnn, typeof(SimpleRnnCell))]
    [InlineData(CellType.Gru, typeof(ConvGruCell))]
    [InlineData(CellType.Lstm, typeof(ConvLstmCell))]
    [InlineData(CellType.Ugrnn, typeof(UgrnnCell))]
    [InlineData(CellType.IntersectionRnn, typeof(IntersectionRnnCell))]
    [InlineData(CellType.Rgc, typeof(ReciprocalGatedCell))]
    public void Each_type_builds_its_cell(CellType type, Type expected)
    {
        using var cell = CellFactory.Create("conv4", new CellSpec { Type = type }, 8, 8, 4)!;
        Assert.IsType(expected, cell);
        Assert.Equal("conv4", cell.GetName());
        Assert.Equal(8, cell.OutChannels);
    }

    [Fact]
    public void A_missing_rgc_block_means_the_shallow_cell()
    {
        using var cell = (ReciprocalGatedCell)CellFactory.Create("conv3", new CellSpec { Type = CellType.Rgc }, 8, 8, 4)!;
        Assert.Equal(8, cell.CellDepth);
        Assert.Contains("residual_to_out_gate.weight", cell.state_dict().Keys);
    }

    [Theory]
    [InlineData(CellType.Gru, 0, false, false, "cell.kernel")]
    [InlineData(CellType.Gru, 3, true, false, "cell.layer_norm")]
    [InlineData(CellType.Ugrnn, 3, false, true, "cell.peepholes")]
    public void Invalid_specs_name_the_field(CellType type, int kernel, bool layerNorm, bool peepholes, string field)
    {
        var e = Assert.Throws<ArgumentException>(() =>
            CellFactory.Create("x", new CellSpec { Type = type, Kernel = kernel, LayerNorm = layerNorm, Peepholes = peepholes }, 8, 8, 8));
        Assert.StartsWith(field, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Invalid_rgc_specs_name_the_field()
    {
        var spec = new CellSpec { Type = CellType.Rgc, Rgc = RgcSpec.Shallow with { TauKernel = 0 } };
        Assert.Contains("cell.rgc.tau_kernel", Assert.Throws<ArgumentException>(() => CellFactory.Create("x", spec, 8, 8, 8)).Message, StringComparison.Ordinal);
        spec = new CellSpec { Type = CellType.Rgc, Rgc = RgcSpec.Shallow with { OutResidual = false, ResidualIntoOutput = true } };
        Assert.Contains("cell.rgc.residual_into_output", Assert.Throws<ArgumentException>(() => CellFactory.Create("x", spec, 8, 8, 8)).Message, StringComparison.Ordinal);
        spec = new CellSpec { Type = CellType.Gru, Rgc = RgcSpec.Median };
        Assert.Contains("cell.rgc", Assert.Throws<ArgumentException>(() => CellFactory.Create("x", spec, 8, 8, 8)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Even_kernels_are_accepted_like_the_reference_lstm_kernels_2_and_4()
    {
        foreach (var k in new[] { 2, 4 })
        {
            using var cell = CellFactory.Create("conv3", new CellSpec { Type = CellType.Lstm, Kernel = k }, 8, 8, 8)!;
            Assert.Equal(8, cell.OutChannels);
        }
    }
}
