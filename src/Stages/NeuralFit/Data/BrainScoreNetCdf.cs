using System.Text;
using PureHDF;
using PureHDF.VOL.Native;

namespace Pipeline.Stages.NeuralFit;

/// <summary>
/// Brain-Score-style NetCDF4 (HDF5) assemblies, as <c>xarray.DataArray.to_netcdf</c> writes a DataArray whose
/// MultiIndex levels were reset to plain coordinates: one float data variable of dims (presentation, neuroid, time_bin)
/// in any order, and 1-D coordinate variables along each dim (stimulus_id — or the older image_id —, repetition,
/// object_name; neuroid_id, region; time_bin_start, time_bin_end); other coordinates are ignored. Strings may be variable-length or fixed-size char arrays (<c>|S1</c> with a
/// <c>stringN</c> dim). A variable's dims come from netCDF's <c>_Netcdf4Coordinates</c>/<c>_Netcdf4Dimid</c>, else its
/// HDF5 <c>DIMENSION_LIST</c>, else its length when that is unambiguous.
/// </summary>
public static partial class BrainScoreNetCdf
{
    public const string PresentationDim = "presentation";
    public const string NeuroidDim = "neuroid";
    public const string TimeBinDim = "time_bin";

    // netCDF-C's marker for a dimension scale that is not also a coordinate variable.
    private const string DimensionWithoutVariable = "This is a netCDF dimension but not a netCDF variable.";

    public static NeuralAssembly Read(string path)
    {
        if (!File.Exists(path)) throw new NeuralDataException($"{path}: the file does not exist");
        try
        {
            using var file = H5File.OpenRead(path);
            return Read(file, path);
        }
        catch (NeuralDataException)
        {
            throw;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new NeuralDataException($"{path}: not a readable NetCDF4/HDF5 assembly ({e.Message})");
        }
    }

    private static NeuralAssembly Read(NativeFile file, string path)
    {
        var datasets = file.Children().OfType<IH5Dataset>().ToList();
        var dimIds = new Dictionary<int, string>();
        foreach (var d in datasets)
        {
            if (d.AttributeExists("_Netcdf4Dimid")) dimIds[d.Attribute("_Netcdf4Dimid").Read<int>()] = d.Name!;
        }
        var dimScales = datasets.Where(d => d.AttributeExists("CLASS")).Select(d => d.Name!).ToHashSet(StringComparer.Ordinal);

        var dataVars = datasets.Where(d => d.Space.Dimensions.Length == 3 && d.Type.Class == H5DataTypeClass.FloatingPoint).ToList();
        if (dataVars.Count != 1)
        {
            throw new NeuralDataException($"{path}: expected exactly one 3-D float data variable (presentation, neuroid, time_bin), found {dataVars.Count}" +
                (dataVars.Count > 1 ? ": " + string.Join(", ", dataVars.Select(d => d.Name)) : ""));
        }
        var data = dataVars[0];
        var shape = data.Space.Dimensions.Select(d => (int)d).ToArray();
        var dims = DimsOf(file, data, dimIds) ?? throw new NeuralDataException($"{path}: the data variable '{data.Name}' does not name its dimensions");
        var wanted = new[] { PresentationDim, NeuroidDim, TimeBinDim };
        var missingDims = wanted.Where(w => !dims.Contains(w)).ToList();
        if (missingDims.Count > 0)
        {
            throw new NeuralDataException($"{path}: the data variable '{data.Name}' has dims ({string.Join(", ", dims)}); missing: {string.Join(", ", missingDims)}");
        }
        var length = wanted.ToDictionary(w => w, w => shape[Array.IndexOf(dims, w)]);

        // Coordinates: every other 1-D (or char-array 2-D) variable along one of the three dims.
        var coords = new Dictionary<string, (string Dim, object Values)>(StringComparer.Ordinal);
        foreach (var d in datasets)
        {
            if (ReferenceEquals(d, data)) continue;
            if (d.AttributeExists("NAME") && ReadText(d.Attribute("NAME")).StartsWith(DimensionWithoutVariable, StringComparison.Ordinal)) continue;
            var vdims = DimsOf(file, d, dimIds);
            var rank = d.Space.Dimensions.Length;
            var isChars = rank == 2 && d.Type.Class == H5DataTypeClass.String && d.Type.Size == 1;
            if (rank != 1 && !isChars) continue;
            string dim;
            if (vdims is { Length: > 0 }) dim = vdims[0];
            else
            {
                // No dimension metadata: fall back to the length, when only one of the three dims has it.
                var n = (int)d.Space.Dimensions[0];
                var candidates = wanted.Where(w => length[w] == n).ToList();
                if (candidates.Count != 1) continue;
                dim = candidates[0];
            }
            if (!wanted.Contains(dim) || dimScales.Contains(d.Name!) && d.Name == dim) continue;
            coords[d.Name!] = (dim, ReadValues(d, isChars));
        }

        string[] Strings(string name, string dim)
        {
            if (!coords.TryGetValue(name, out var c) || c.Dim != dim)
            {
                var along = coords.Where(kv => kv.Value.Dim == dim).Select(kv => kv.Key).Order(StringComparer.Ordinal);
                throw new NeuralDataException($"{path}: missing coordinate '{name}' along '{dim}' (coordinates along it: {string.Join(", ", along)})");
            }
            var count = c.Values is Array array ? array.Length : 0;
            if (count != length[dim]) throw new NeuralDataException($"{path}: coordinate '{name}' has {count} values but '{dim}' has length {length[dim]}");
            return c.Values switch
            {
                string[] s => s,
                double[] v => [.. v.Select(x => x.ToString(System.Globalization.CultureInfo.InvariantCulture))],
                _ => throw new NeuralDataException($"{path}: coordinate '{name}' has an unsupported type"),
            };
        }
        int[] Ints(string name, string dim)
        {
            var values = coords.TryGetValue(name, out var c) && c.Dim == dim && c.Values is double[] d && d.Length == length[dim] ? c.Values : Strings(name, dim);
            if (values is double[] v && v.All(x => x == Math.Round(x))) return [.. v.Select(x => (int)x)];
            throw new NeuralDataException($"{path}: coordinate '{name}' along '{dim}' must hold integers");
        }

        // Older Brain-Score assemblies call the stimulus id image_id.
        var sid = Strings(coords.ContainsKey("stimulus_id") || !coords.ContainsKey("image_id") ? "stimulus_id" : "image_id", PresentationDim);
        var rep = Ints("repetition", PresentationDim);
        var obj = Strings("object_name", PresentationDim);
        var nid = Strings("neuroid_id", NeuroidDim);
        var region = Strings("region", NeuroidDim);
        var start = Ints("time_bin_start", TimeBinDim);
        var end = Ints("time_bin_end", TimeBinDim);

        var raw = data.Read<float[]>();
        var responses = Transpose(raw, shape, [.. wanted.Select(w => Array.IndexOf(dims, w))]);
        return new NeuralAssembly(responses,
            [.. Enumerable.Range(0, sid.Length).Select(i => new Presentation(sid[i], rep[i], obj[i]))],
            [.. Enumerable.Range(0, nid.Length).Select(i => new Neuroid(nid[i], region[i]))],
            [.. Enumerable.Range(0, start.Length).Select(i => new TimeBin(start[i], end[i]))]);
    }

    /// <summary>Reorders a row-major 3-D array so that axis k of the result is axis <paramref name="order"/>[k] of the input.</summary>
    private static float[] Transpose(float[] raw, int[] shape, int[] order)
    {
        if (order is [0, 1, 2]) return raw;
        var stride = new[] { shape[1] * shape[2], shape[2], 1 };
        var (a, b, c) = (shape[order[0]], shape[order[1]], shape[order[2]]);
        var result = new float[raw.Length];
        var i = 0;
        for (var x = 0; x < a; x++)
            for (var y = 0; y < b; y++)
                for (var z = 0; z < c; z++)
                    result[i++] = raw[(x * stride[order[0]]) + (y * stride[order[1]]) + (z * stride[order[2]])];
        return result;
    }

    private static string[]? DimsOf(NativeFile file, IH5Dataset d, Dictionary<int, string> dimIds)
    {
        if (d.AttributeExists("_Netcdf4Coordinates"))
        {
            var ids = d.Attribute("_Netcdf4Coordinates").Read<int[]>();
            if (ids.All(dimIds.ContainsKey)) return [.. ids.Select(i => dimIds[i])];
        }
        if (d.AttributeExists("DIMENSION_LIST"))
        {
            var refs = d.Attribute("DIMENSION_LIST").Read<NativeObjectReference1[][]>();
            if (refs.All(r => r.Length > 0)) return [.. refs.Select(r => file.Get(r[0]).Name!)];
        }
        if (d.AttributeExists("CLASS") && d.Space.Dimensions.Length == 1) return [d.Name!];
        return null;
    }

    private static object ReadValues(IH5Dataset d, bool chars)
    {
        if (chars)
        {
            // xarray's fixed-size char arrays: [n, width] single bytes, NUL-padded UTF-8.
            var width = (int)d.Space.Dimensions[1];
            var bytes = d.Read<byte[]>();
            return Enumerable.Range(0, (int)d.Space.Dimensions[0]).Select(i => Encoding.UTF8.GetString(bytes, i * width, width).TrimEnd('\0')).ToArray();
        }
        return d.Type.Class switch
        {
            H5DataTypeClass.String or H5DataTypeClass.VariableLength => d.Read<string[]>().Select(s => s.TrimEnd('\0')).ToArray(),
            H5DataTypeClass.FixedPoint => d.Type.Size == 8 ? d.Read<long[]>().Select(v => (double)v).ToArray()
                : d.Type.Size == 4 ? d.Read<int[]>().Select(v => (double)v).ToArray()
                : d.Type.Size == 2 ? d.Read<short[]>().Select(v => (double)v).ToArray() : d.Read<byte[]>().Select(v => (double)v).ToArray(),
            H5DataTypeClass.FloatingPoint => d.Type.Size == 8 ? d.Read<double[]>() : d.Read<float[]>().Select(v => (double)v).ToArray(),
            _ => Array.Empty<string>(),
        };
    }

    private static string ReadText(IH5Attribute a) => a.Type.Class == H5DataTypeClass.String ? a.Read<string>() : "";
}
