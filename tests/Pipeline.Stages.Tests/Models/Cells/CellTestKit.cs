using Pipeline.Stages.Models.Cells;
using TorchSharp;
using static TorchSharp.torch;

namespace Pipeline.Stages.Tests.Models.Cells;

/// <summary>Small configurations of every cell and a plain unroll loop for the tests.</summary>
internal static class CellTestKit
{
    public const long Batch = 2;
    public const long Channels = 16;
    public const long ResidualChannels = 8;

    /// <summary>Names of the configurations <see cref="Build"/> knows; the xunit member data for theories.</summary>
    public static readonly string[] Names =
        ["time_decay", "simple_rnn", "simple_rnn_ln", "gru", "lstm", "lstm_peep_ln", "lstm_k2", "ugrnn", "intersection_rnn", "rgc_shallow", "rgc_median"];

    public static TheoryData<string> All()
    {
        var data = new TheoryData<string>();
        foreach (var n in Names)
            data.Add(n);
        return data;
    }

    public static void Seed(int seed = 7)
    {
        torch.set_num_threads(1);
        torch.manual_seed(seed);
    }

    public static CellSpec Spec(string name) => name switch
    {
        "time_decay" => new CellSpec { Type = CellType.TimeDecay },
        "simple_rnn" => new CellSpec { Type = CellType.SimpleRnn },
        "simple_rnn_ln" => new CellSpec { Type = CellType.SimpleRnn, LayerNorm = true },
        "gru" => new CellSpec { Type = CellType.Gru },
        "lstm" => new CellSpec { Type = CellType.Lstm },
        "lstm_peep_ln" => new CellSpec { Type = CellType.Lstm, Peepholes = true, LayerNorm = true },
        "lstm_k2" => new CellSpec { Type = CellType.Lstm, Kernel = 2 },
        "ugrnn" => new CellSpec { Type = CellType.Ugrnn },
        "intersection_rnn" => new CellSpec { Type = CellType.IntersectionRnn },
        "rgc_shallow" => new CellSpec { Type = CellType.Rgc, Rgc = RgcSpec.Shallow },
        // The median preset with a smaller cell depth keeps the tests fast; the rest is the preset.
        "rgc_median" => new CellSpec { Type = CellType.Rgc, Rgc = RgcSpec.Median with { CellDepth = 16 } },
        _ => throw new ArgumentException(name),
    };

    public static RecurrentCell Build(string name) =>
        CellFactory.Create(name, Spec(name), Channels, Channels, ResidualChannels)!;

    /// <summary>Unrolls <paramref name="cell"/> for the given inputs from zero state; returns outputs and the final state.</summary>
    public static (List<Tensor> Outputs, Tensor[] State) Unroll(RecurrentCell cell, IReadOnlyList<Tensor> xs, Tensor? residual = null)
    {
        var x0 = xs[0];
        var state = cell.ZeroState(x0.shape[0], x0.shape[2], x0.shape[3], x0.device, x0.dtype);
        var outputs = new List<Tensor>();
        foreach (var x in xs)
        {
            var (y, s) = cell.Step(x, state, new CellExtras(residual ?? ResidualFor(x), null));
            outputs.Add(y);
            state = s;
        }
        return (outputs, state);
    }

    public static Tensor ResidualFor(Tensor x) =>
        torch.randn(x.shape[0], ResidualChannels, x.shape[2], x.shape[3]);

    public static List<Tensor> Inputs(int steps, long height, long width, long channels = Channels) =>
        Enumerable.Range(0, steps).Select(_ => torch.randn(Batch, channels, height, width)).ToList();

    public static Dictionary<string, Tensor> Parameters(nn.Module module) =>
        module.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);

    public static long ParameterCount(nn.Module module) => module.parameters().Sum(p => p.numel());

    public static void ZeroBiases(nn.Module module)
    {
        using var _ = torch.no_grad();
        foreach (var (n, p) in module.named_parameters())
            if (n.EndsWith("bias", StringComparison.Ordinal) && !n.Contains("norm", StringComparison.Ordinal))
                p.zero_();
    }

    public static void AssertClose(Tensor expected, Tensor actual, double atol = 1e-5)
    {
        Assert.Equal(expected.shape, actual.shape);
        var diff = (expected - actual).abs().max().ToDouble();
        Assert.True(diff <= atol, $"max |expected − actual| = {diff} > {atol}");
    }
}
