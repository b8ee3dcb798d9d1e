namespace Pipeline.Stages.Models.Cells;

/// <summary>Builds a layer's cell from its <see cref="CellSpec"/>.</summary>
public static class CellFactory
{
    /// <summary>
    /// The cell for a layer, or null for <see cref="CellType.None"/> (a feedforward layer). Invalid specs throw
    /// <see cref="ArgumentException"/> naming the spec field (<c>cell.kernel</c>, <c>cell.rgc.cell_depth</c>, …).
    /// Kernels may be even: convs pad TF-"SAME"-style (see <c>CellLayers.SameConv</c>).
    /// </summary>
    /// <param name="name">The module's name (e.g. the layer's name).</param>
    /// <param name="residualChannels">Channels of the layer's input passed as <see cref="CellExtras.Residual"/>; used by
    /// the RGC with <see cref="RgcSpec.OutResidual"/>, ignored otherwise.</param>
    public static RecurrentCell? Create(string name, CellSpec spec, long inChannels, long outChannels, long residualChannels)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.Type == CellType.None)
            return null;
        if (spec.Kernel < 1 && spec.Type is CellType.SimpleRnn or CellType.Gru or CellType.Lstm or CellType.Ugrnn or CellType.IntersectionRnn)
            throw new ArgumentException($"cell.kernel must be at least 1 (got {spec.Kernel}).", nameof(spec));
        if (spec.LayerNorm && spec.Type is not (CellType.SimpleRnn or CellType.Lstm))
            throw new ArgumentException($"cell.layer_norm applies to simple_rnn and lstm cells only (this cell is {spec.Type}).", nameof(spec));
        if (spec.Peepholes && spec.Type != CellType.Lstm)
            throw new ArgumentException($"cell.peepholes applies to lstm cells only (this cell is {spec.Type}).", nameof(spec));
        if (spec.Rgc is not null && spec.Type != CellType.Rgc)
            throw new ArgumentException($"cell.rgc is set but the cell type is {spec.Type}.", nameof(spec));

        return spec.Type switch
        {
            CellType.TimeDecay => new TimeDecayCell(inChannels, outChannels, name),
            CellType.SimpleRnn => new SimpleRnnCell(inChannels, outChannels, spec.Kernel, spec.LayerNorm, name),
            CellType.Gru => new ConvGruCell(inChannels, outChannels, spec.Kernel, name),
            CellType.Lstm => new ConvLstmCell(inChannels, outChannels, spec.Kernel, spec.Peepholes, spec.LayerNorm, name),
            CellType.Ugrnn => new UgrnnCell(inChannels, outChannels, spec.Kernel, name),
            CellType.IntersectionRnn => new IntersectionRnnCell(inChannels, outChannels, spec.Kernel, name),
            CellType.Rgc => new ReciprocalGatedCell(spec.Rgc ?? RgcSpec.Shallow, inChannels, outChannels, residualChannels, name),
            _ => throw new ArgumentException($"cell.type {spec.Type} is not a known cell type.", nameof(spec)),
        };
    }
}
