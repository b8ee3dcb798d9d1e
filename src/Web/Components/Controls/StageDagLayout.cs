using Pipeline.Jobs.RunStore;

namespace Pipeline.Web.Components.Controls;

/// <summary>A stage to draw: its dependencies by name; <c>Caption</c> is the second line of its box (kind, progress, cache).</summary>
public sealed record DagNode(string Name, IReadOnlyList<string> DependsOn, StageStatus Status, string Caption, long? StageId = null, double Progress = 0);

public sealed record PlacedNode(DagNode Node, int Layer, int Order, double X, double Y, double Width, double Height)
{
    public string Fill => StatusColors.Fill(Node.Status);
    public double Right => X + Width;
    public double Bottom => Y + Height;
}

/// <summary>An edge from a dependency's right side to its dependent's left side, as an SVG cubic Bézier path.</summary>
public sealed record PlacedEdge(string From, string To, string Path);

public sealed record DagLayout(IReadOnlyList<PlacedNode> Nodes, IReadOnlyList<PlacedEdge> Edges, double Width, double Height, int Crossings);

/// <summary>
/// A layered (Sugiyama-style) drawing of a run's stage DAG, left to right: each stage's layer is the longest path from a
/// stage without dependencies; within a layer stages are ordered by the barycentre of their neighbours in the layer
/// before (then after), sweeping both ways a few times and keeping the order with the fewest crossings between adjacent
/// layers. Tens of stages, so no edge routing beyond one curve per edge. Pure: names in, coordinates out.
/// </summary>
public static class StageDagLayout
{
    public const double NodeWidth = 168, NodeHeight = 48, LayerGap = 56, RowGap = 18, Margin = 8;
    private const int Sweeps = 8;

    public static DagLayout Compute(IReadOnlyList<DagNode> nodes)
    {
        if (nodes.Count == 0) return new DagLayout([], [], 2 * Margin, 2 * Margin, 0);
        var byName = new Dictionary<string, DagNode>(StringComparer.Ordinal);
        foreach (var n in nodes) byName.TryAdd(n.Name, n);
        // Dependencies on stages not drawn (or a stage on itself) are left out rather than failing the page.
        var parents = byName.Values.ToDictionary(n => n.Name, n => n.DependsOn.Where(d => byName.ContainsKey(d) && d != n.Name).Distinct().ToList());
        var children = byName.Keys.ToDictionary(k => k, _ => new List<string>());
        foreach (var (child, ps) in parents) foreach (var p in ps) children[p].Add(child);

        var layer = Layers(byName.Keys, parents);
        var layers = Enumerable.Range(0, layer.Values.Max() + 1)
            .Select(l => byName.Keys.Where(k => layer[k] == l).ToList()).ToList();

        var best = layers.Select(l => l.ToList()).ToList();
        var bestCrossings = Crossings(best, parents);
        for (var sweep = 0; sweep < Sweeps && bestCrossings > 0; sweep++)
        {
            var down = sweep % 2 == 0;
            var range = down ? Enumerable.Range(1, layers.Count - 1) : Enumerable.Range(0, layers.Count - 1).Reverse();
            foreach (var l in range) Reorder(layers, l, down ? parents : children);
            var c = Crossings(layers, parents);
            if (c < bestCrossings)
            {
                bestCrossings = c;
                best = layers.Select(x => x.ToList()).ToList();
            }
        }

        var tallest = best.Max(l => l.Count);
        var height = 2 * Margin + tallest * NodeHeight + (tallest - 1) * RowGap;
        var placed = new List<PlacedNode>();
        for (var l = 0; l < best.Count; l++)
        {
            var column = best[l];
            var columnHeight = column.Count * NodeHeight + (column.Count - 1) * RowGap;
            var top = Margin + (height - 2 * Margin - columnHeight) / 2;
            for (var i = 0; i < column.Count; i++)
            {
                placed.Add(new PlacedNode(byName[column[i]], l, i, Margin + l * (NodeWidth + LayerGap), top + i * (NodeHeight + RowGap), NodeWidth, NodeHeight));
            }
        }
        var at = placed.ToDictionary(p => p.Node.Name);
        var edges = new List<PlacedEdge>();
        foreach (var p in placed)
        {
            foreach (var parent in parents[p.Node.Name])
            {
                var a = at[parent];
                double x1 = a.Right, y1 = a.Y + a.Height / 2, x2 = p.X, y2 = p.Y + p.Height / 2, mid = (x1 + x2) / 2;
                edges.Add(new PlacedEdge(parent, p.Node.Name, FormattableString.Invariant($"M {x1:0.#} {y1:0.#} C {mid:0.#} {y1:0.#}, {mid:0.#} {y2:0.#}, {x2:0.#} {y2:0.#}")));
            }
        }
        var width = 2 * Margin + best.Count * NodeWidth + (best.Count - 1) * LayerGap;
        return new DagLayout(placed, edges, width, height, bestCrossings);
    }

    /// <summary>Longest path from a source; a cycle (which a RunSpec cannot have) is cut where it is found.</summary>
    private static Dictionary<string, int> Layers(IEnumerable<string> names, Dictionary<string, List<string>> parents)
    {
        var layer = new Dictionary<string, int>(StringComparer.Ordinal);
        var visiting = new HashSet<string>(StringComparer.Ordinal);
        int Of(string n)
        {
            if (layer.TryGetValue(n, out var known)) return known;
            if (!visiting.Add(n)) return 0;
            var l = parents[n].Select(p => Of(p) + 1).DefaultIfEmpty(0).Max();
            visiting.Remove(n);
            return layer[n] = l;
        }
        foreach (var n in names) Of(n);
        return layer;
    }

    /// <summary>Orders layer <paramref name="l"/> by the mean position of each stage's neighbours (in any other layer); stages without neighbours keep their place.</summary>
    private static void Reorder(List<List<string>> layers, int l, Dictionary<string, List<string>> neighbours)
    {
        var position = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var column in layers)
        {
            for (var i = 0; i < column.Count; i++) position[column[i]] = column.Count == 1 ? 0.5 : (double)i / (column.Count - 1);
        }
        var current = layers[l];
        var keyed = current.Select((n, i) => (Name: n, Key: neighbours[n].Count == 0
            ? (current.Count == 1 ? 0.5 : (double)i / (current.Count - 1))
            : neighbours[n].Average(x => position[x]), Index: i));
        layers[l] = [.. keyed.OrderBy(k => k.Key).ThenBy(k => k.Index).Select(k => k.Name)];
    }

    /// <summary>Pairs of edges that cross, counting edges by the positions of their ends in their layers (exact for edges between adjacent layers).</summary>
    public static int Crossings(IReadOnlyList<IReadOnlyList<string>> layers, IReadOnlyDictionary<string, List<string>> parents)
    {
        var layerOf = new Dictionary<string, int>(StringComparer.Ordinal);
        var orderOf = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var l = 0; l < layers.Count; l++)
        {
            for (var i = 0; i < layers[l].Count; i++)
            {
                layerOf[layers[l][i]] = l;
                orderOf[layers[l][i]] = i;
            }
        }
        var edges = parents.SelectMany(kv => kv.Value.Select(p => (From: p, To: kv.Key)))
            .Select(e => (FromLayer: layerOf[e.From], ToLayer: layerOf[e.To], A: orderOf[e.From], B: orderOf[e.To])).ToList();
        var crossings = 0;
        for (var i = 0; i < edges.Count; i++)
        {
            for (var j = i + 1; j < edges.Count; j++)
            {
                var (e, f) = (edges[i], edges[j]);
                if (e.FromLayer != f.FromLayer || e.ToLayer != f.ToLayer) continue;
                if ((e.A - f.A) * (e.B - f.B) < 0) crossings++;
            }
        }
        return crossings;
    }

    private static int Crossings(List<List<string>> layers, Dictionary<string, List<string>> parents) =>
        Crossings(layers.Select(l => (IReadOnlyList<string>)l).ToList(), parents.ToDictionary(kv => kv.Key, kv => kv.Value));
}
