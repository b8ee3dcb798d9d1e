namespace Pipeline.Stages.Models.Cells;

/// <summary>
/// A layer's cell in a model spec (JSON, snake_case). Fields that apply to one cell type only are ignored by others;
/// <see cref="Rgc"/> holds the Reciprocal Gated Cell's many knobs, with the shallow and median variants of CONVRNN.md
/// as named defaults.
/// </summary>
public sealed record CellSpec
{
    public CellType Type { get; init; } = CellType.None;

    /// <summary>Kernel of the cell's convolution over [x, h] (SimpleRNN, GRU, LSTM, UGRNN, IntersectionRNN).</summary>
    public int Kernel { get; init; } = 3;

    /// <summary>SimpleRNN and LSTM: layer norm over (C, H, W).</summary>
    public bool LayerNorm { get; init; }

    /// <summary>LSTM: peephole connections from the cell state to the gates.</summary>
    public bool Peepholes { get; init; }

    /// <summary>RGC only; null means <see cref="RgcSpec.Shallow"/>.</summary>
    public RgcSpec? Rgc { get; init; }
}

public enum GateActivation { Sigmoid, Tanh }

/// <summary>The Reciprocal Gated Cell's configuration (CONVRNN.md "Reciprocal Gated Cell").</summary>
public sealed record RgcSpec
{
    /// <summary>Channels of the cell state c; null = the layer's output channels.</summary>
    public int? CellDepth { get; init; }

    /// <summary>Kernel of the τ (time constant) convs W_cc, W_hh.</summary>
    public int TauKernel { get; init; } = 3;

    /// <summary>Kernel of the gate convs W_hc, W_ch (and W_rh).</summary>
    public int GateKernel { get; init; } = 3;

    /// <summary>τ and gate convs as depthwise-separable (depthwise k×k then pointwise 1×1).</summary>
    public bool DepthwiseSeparable { get; init; }

    public GateActivation TauActivation { get; init; } = GateActivation.Sigmoid;
    public GateActivation GateActivation { get; init; } = GateActivation.Sigmoid;

    /// <summary>Each factor is (a + k·f(·)); a = 1, k = −1 gives 1 − f(·).</summary>
    public double ATau { get; init; } = 1;
    public double KTau { get; init; } = -1;
    public double AGate { get; init; } = 1;
    public double KGate { get; init; } = -1;

    /// <summary>Kernel of W_xc (input → cell).</summary>
    public int InputToCellKernel { get; init; } = 3;

    /// <summary>Kernel of W_xh (input → output); null means h_in = x (input_to_out = false).</summary>
    public int? InputToOutKernel { get; init; }

    /// <summary>Residual (the layer's input) into the output: shallow adds W_rh·res to the output gate; with
    /// <see cref="ResidualIntoOutput"/> it is also added to h_in (1×1 projection when channels differ);
    /// <see cref="ResidualIntoGate"/> = false leaves the gate out (the median cell).</summary>
    public bool OutResidual { get; init; } = true;

    public bool ResidualIntoOutput { get; init; }

    /// <summary>With <see cref="OutResidual"/>: whether W_rh·res enters the output gate. The searched median cell does
    /// not (neuroailab/convrnns <c>configs/median_rgcell_cfg.py</c>: <c>residual_to_out_gate = False</c>,
    /// <c>out_residual = True</c>); the shallow cell does (<c>models/rgc_shallow.json</c>: <c>residual_to_out_gate</c>).</summary>
    public bool ResidualIntoGate { get; init; } = true;

    /// <summary>rgc_shallow: 3×3 kernels, cell depth = out depth, sigmoid τ and gate, h_in = x, residual into the output gate.</summary>
    public static readonly RgcSpec Shallow = new();

    /// <summary>The searched median cell: depth 64, 7×7 depthwise-separable τ/gate, tanh gate, the fitted a/k constants.</summary>
    public static readonly RgcSpec Median = new()
    {
        CellDepth = 64,
        TauKernel = 7,
        GateKernel = 7,
        DepthwiseSeparable = true,
        TauActivation = GateActivation.Sigmoid,
        GateActivation = GateActivation.Tanh,
        ATau = 0.9219,
        KTau = -0.9219,
        AGate = 0.7007,
        KGate = -0.7007,
        InputToCellKernel = 2,
        InputToOutKernel = 3,
        OutResidual = true,
        ResidualIntoOutput = true,
        ResidualIntoGate = false,
    };
}
