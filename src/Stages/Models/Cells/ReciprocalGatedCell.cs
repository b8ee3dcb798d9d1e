using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pipeline.Stages.Models.Cells;

/// <summary>
/// The Reciprocal Gated Cell (CONVRNN.md "Reciprocal Gated Cell"): a cell state c and an output state h that each
/// integrate their input with a learned time constant τ, the output gating the input to the cell and the cell gating
/// the input to the output. State layout: <c>[h (out channels), c (cell depth)]</c>; the cell emits h'.
/// </summary>
/// <remarks>
/// State-dict keys (names follow the reference's variable scopes, so TF checkpoints map one to one):
/// <c>input_to_cell</c> W_xc; <c>cell_to_cell</c> W_cc (τ of c); <c>out_to_cell</c> W_hc (gate of c);
/// <c>input_to_out</c> W_xh (only with <see cref="RgcSpec.InputToOutKernel"/>); <c>out_to_out</c> W_hh (τ of h);
/// <c>cell_to_out</c> W_ch (gate of h); <c>residual_to_out_gate</c> W_rh (no bias); <c>residual_projection</c>
/// (1×1, no bias, when the residual enters h_in with other channel counts). τ/gate convs are
/// <c>{name}.weight/bias</c> or, depthwise-separable, <c>{name}.depthwise.weight</c> + <c>{name}.pointwise.weight/bias</c>.
/// </remarks>
public sealed class ReciprocalGatedCell : RecurrentCell
{
    private readonly Conv2d input_to_cell;
    private readonly Conv2d? input_to_out;
    private readonly nn.Module<Tensor, Tensor> cell_to_cell;
    private readonly nn.Module<Tensor, Tensor> out_to_cell;
    private readonly nn.Module<Tensor, Tensor> out_to_out;
    private readonly nn.Module<Tensor, Tensor> cell_to_out;
    private readonly nn.Module<Tensor, Tensor>? residual_to_out_gate;
    private readonly Conv2d? residual_projection;

    private readonly RgcSpec spec;
    private readonly long inChannels, outChannels, cellDepth;
    // Optionally both recurrent convs that read c (τ of c, gate of h) run as one conv, and likewise the two that read h
    // (same odd kernel, plain convs). Off by default: measured on rgc-shallow (64 px, batch 64, 2 threads) the fused
    // path was slower, not faster — forward+backward ≈13 s vs ≈9 s per step — because the stacked weight is
    // re-concatenated every step and oneDNN re-orders it (1024×512×3×3 for conv5: ≈36 ms per call vs ≈1 ms for a
    // 512×512×3×3 weight), and its outputs are split and re-laid-out (bench/README.md "pipeline bench models").
    private readonly bool fuseStateConvs;

    public ReciprocalGatedCell(RgcSpec spec, long inChannels, long outChannels, long residualChannels, string name = "rgc")
        : this(spec, inChannels, outChannels, residualChannels, name, fuseStateConvs: false)
    {
    }

    /// <param name="fuseStateConvs">true runs the two convs per state as one stacked conv (tests and benchmarks compare the two paths).</param>
    internal ReciprocalGatedCell(RgcSpec spec, long inChannels, long outChannels, long residualChannels, string name, bool fuseStateConvs)
        : base(name)
    {
        ArgumentNullException.ThrowIfNull(spec);
        CellLayers.RequirePositive(inChannels, "in channels");
        CellLayers.RequirePositive(outChannels, "out channels");
        CellLayers.RequirePositive(spec.TauKernel, "cell.rgc.tau_kernel");
        CellLayers.RequirePositive(spec.GateKernel, "cell.rgc.gate_kernel");
        CellLayers.RequirePositive(spec.InputToCellKernel, "cell.rgc.input_to_cell_kernel");
        if (spec.CellDepth is { } depth)
            CellLayers.RequirePositive(depth, "cell.rgc.cell_depth");
        if (spec.InputToOutKernel is { } k)
            CellLayers.RequirePositive(k, "cell.rgc.input_to_out_kernel");
        else if (inChannels != outChannels)
            throw new ArgumentException(
                $"RGC without cell.rgc.input_to_out_kernel uses h_in = x, so in channels ({inChannels}) must equal out channels ({outChannels}).",
                nameof(inChannels));
        if (spec.ResidualIntoOutput && !spec.OutResidual)
            throw new ArgumentException("cell.rgc.residual_into_output needs cell.rgc.out_residual.", nameof(spec));
        if (spec.OutResidual && !spec.ResidualIntoGate && !spec.ResidualIntoOutput)
            throw new ArgumentException(
                "cell.rgc.out_residual is set but neither cell.rgc.residual_into_gate nor cell.rgc.residual_into_output uses it.", nameof(spec));
        if (spec.OutResidual)
            CellLayers.RequirePositive(residualChannels, "residual channels");

        this.spec = spec;
        this.inChannels = inChannels;
        this.outChannels = outChannels;
        cellDepth = spec.CellDepth ?? outChannels;
        var separable = spec.DepthwiseSeparable;

        input_to_cell = CellLayers.SameConv(inChannels, cellDepth, spec.InputToCellKernel);
        input_to_out = spec.InputToOutKernel is { } kxh ? CellLayers.SameConv(inChannels, outChannels, kxh) : null;
        cell_to_cell = CellLayers.Conv(cellDepth, cellDepth, spec.TauKernel, separable);
        out_to_cell = CellLayers.Conv(outChannels, cellDepth, spec.GateKernel, separable);
        out_to_out = CellLayers.Conv(outChannels, outChannels, spec.TauKernel, separable);
        cell_to_out = CellLayers.Conv(cellDepth, outChannels, spec.GateKernel, separable);
        // The reference's residual_to_out_gate has no bias (plain and separable forms alike).
        residual_to_out_gate = spec.OutResidual && spec.ResidualIntoGate
            ? CellLayers.Conv(residualChannels, outChannels, spec.GateKernel, separable, bias: false)
            : null;
        // residual_add of the reference: identity when channels agree, else a 1×1 projection without bias.
        residual_projection = spec.ResidualIntoOutput && residualChannels != outChannels
            ? CellLayers.SameConv(residualChannels, outChannels, 1, bias: false)
            : null;

        this.fuseStateConvs = fuseStateConvs && !separable && spec.TauKernel == spec.GateKernel && spec.TauKernel % 2 == 1;
        RegisterComponents();
    }

    public override long InChannels => inChannels;
    public override long OutChannels => outChannels;
    public long CellDepth => cellDepth;

    public override Tensor[] ZeroState(long batch, long height, long width, Device device, ScalarType dtype) =>
    [
        torch.zeros(batch, outChannels, height, width, dtype, device),
        torch.zeros(batch, cellDepth, height, width, dtype, device),
    ];

    public override (Tensor Output, Tensor[] State) Step(Tensor x, Tensor[] state, CellExtras extras)
    {
        ArgumentNullException.ThrowIfNull(state);
        using var scope = torch.NewDisposeScope();
        var (h, c) = (state[0], state[1]);
        var res = extras.Residual;
        if (spec.OutResidual && res is null)
            throw new ArgumentException("This RGC has cell.rgc.out_residual set: extras.Residual (the layer's input) is required.", nameof(extras));

        // Recurrent convs: all four read only the states from t−1 (see the note on the output gate below).
        Tensor tauC, gateC, tauH, gateH;
        if (fuseStateConvs)
        {
            (tauC, gateH) = FusedConv(c, (Conv2d)cell_to_cell, (Conv2d)cell_to_out);
            (gateC, tauH) = FusedConv(h, (Conv2d)out_to_cell, (Conv2d)out_to_out);
        }
        else
        {
            tauC = cell_to_cell.call(c);
            gateH = cell_to_out.call(c);
            gateC = out_to_cell.call(h);
            tauH = out_to_out.call(h);
        }

        // CONVRNN.md cell: c_in = W_xc * x; τc = f_τ(W_cc * c); gc = f_g(W_hc * h);
        // c' = act_c((a_τ + k_τ·τc) ∘ c + (a_g + k_g·gc) ∘ c_in)
        var cIn = input_to_cell.call(x);
        var cNext = HeldScalars.Elu(HeldScalars.Add(
            Factor(spec.TauActivation.Apply(tauC), spec.ATau, spec.KTau) * c,
            Factor(spec.GateActivation.Apply(gateC), spec.AGate, spec.KGate) * cIn));

        // CONVRNN.md output: h_in = W_xh * x (or x) [+ residual(res)] [+ feedback]; τh = f_τ(W_hh * h);
        // gh = f_g(W_ch * c [+ W_rh * res]); h' = act_h((a_τ + k_τ·τh) ∘ h + (a_g + k_g·gh) ∘ h_in).
        // The output gate reads the OLD cell state c, not c': neuroailab/convrnns computes
        // out_gate from prev_cell (cells.py ReciprocalGateCell.__call__ and median_rgcell.py, scope "out"), so the cell
        // and output updates are parallel and all four recurrent convs above can run before either update.
        var hIn = input_to_out?.call(x) ?? x;
        if (spec.ResidualIntoOutput)
            hIn = HeldScalars.Add(hIn, residual_projection?.call(res!) ?? res!);
        if (extras.FeedbackAtOutput is { } fb)
            hIn = HeldScalars.Add(hIn, fb);
        if (residual_to_out_gate is not null)
            gateH = HeldScalars.Add(gateH, residual_to_out_gate.call(res!));
        var hNext = HeldScalars.Elu(HeldScalars.Add(
            Factor(spec.TauActivation.Apply(tauH), spec.ATau, spec.KTau) * h,
            Factor(spec.GateActivation.Apply(gateH), spec.AGate, spec.KGate) * hIn));

        hNext.MoveToOuterDisposeScope();
        cNext.MoveToOuterDisposeScope();
        return (hNext, [hNext, cNext]);
    }

    /// <summary>(a + k·f): a = 1, k = −1 gives 1 − f. With k = −1 it is one op, a − f (rsub), bit-identical to
    /// f·(−1) + a (negation is exact), which saves a full-size op and its backward per factor.</summary>
    private static Tensor Factor(Tensor f, double a, double k) =>
        k == -1 ? HeldScalars.Minus(a, f) : HeldScalars.Plus(HeldScalars.Times(f, k), a);

    /// <summary>Two same-kernel convs over one input as one conv with the weights stacked; split back by channels.</summary>
    private static (Tensor First, Tensor Second) FusedConv(Tensor input, Conv2d first, Conv2d second)
    {
        var (w1, w2, b1, b2) = (first.weight!, second.weight!, first.bias!, second.bias!);
        var weight = torch.cat([w1, w2], 0);
        var bias = torch.cat([b1, b2], 0);
        var pad = w1.shape[2] / 2;
        var outputs = nn.functional.conv2d(input, weight, bias, padding: [pad, pad])
            .split([w1.shape[0], w2.shape[0]], 1);
        return (outputs[0], outputs[1]);
    }
}
