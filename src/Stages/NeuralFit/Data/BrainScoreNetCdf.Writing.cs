using System.Buffers.Binary;
using System.Text;
using PureHDF;

namespace Pipeline.Stages.NeuralFit;

public static partial class BrainScoreNetCdf
{
    /// <summary>The data variable's name when xarray writes an unnamed DataArray.</summary>
    public const string DataVariable = "__xarray_dataarray_variable__";

    /// <summary>
    /// Writes the assembly as xarray would write <c>assembly.reset_index([...]).to_netcdf(path)</c>: dims presentation,
    /// neuroid, time_bin as netCDF dimensions without variables; the data variable float32 (presentation, neuroid,
    /// time_bin); stimulus_id, object_name, neuroid_id, region as variable-length strings; repetition, time_bin_start,
    /// time_bin_end as int64. Written to a temporary file and moved into place, so a failure leaves nothing behind.
    /// </summary>
    public static void Write(NeuralAssembly assembly, string path) => Write(assembly, path, FixedStringPatch.Window, FixedStringPatch.Overlap);

    internal static void Write(NeuralAssembly assembly, string path, int window, int overlap)
    {
        var dims = new (string Name, int Length)[] { (PresentationDim, assembly.Presentations.Count), (NeuroidDim, assembly.Neuroids.Count), (TimeBinDim, assembly.TimeBins.Count) };
        var scales = dims.Select((d, i) => new H5Dataset(new float[d.Length])
        {
            Attributes = new()
            {
                ["CLASS"] = FixedString("DIMENSION_SCALE", 16),
                ["NAME"] = FixedString($"{DimensionWithoutVariable}{d.Length,10}", 64),
                ["_Netcdf4Dimid"] = i,
            },
        }).ToArray();

        H5Dataset Coordinate(object values, int dim)
        {
            var dataset = new H5Dataset(values);
            dataset.Attributes["_Netcdf4Coordinates"] = new[] { dim };
            dataset.Attributes["DIMENSION_LIST"] = new H5ObjectReference[][] { [scales[dim]] };
            return dataset;
        }

        var data = new H5Dataset(assembly.Responses, fileDims: [.. dims.Select(d => (ulong)d.Length)]);
        data.Attributes["_Netcdf4Coordinates"] = new[] { 0, 1, 2 };
        data.Attributes["coordinates"] = "stimulus_id repetition object_name neuroid_id region time_bin_start time_bin_end";
        data.Attributes["DIMENSION_LIST"] = new H5ObjectReference[][] { [scales[0]], [scales[1]], [scales[2]] };

        var file = new H5File
        {
            [PresentationDim] = scales[0],
            [NeuroidDim] = scales[1],
            [TimeBinDim] = scales[2],
            [DataVariable] = data,
            ["stimulus_id"] = Coordinate(assembly.Presentations.Select(p => p.StimulusId).ToArray(), 0),
            ["repetition"] = Coordinate(assembly.Presentations.Select(p => (long)p.Repetition).ToArray(), 0),
            ["object_name"] = Coordinate(assembly.Presentations.Select(p => p.ObjectName).ToArray(), 0),
            ["neuroid_id"] = Coordinate(assembly.Neuroids.Select(n => n.NeuroidId).ToArray(), 1),
            ["region"] = Coordinate(assembly.Neuroids.Select(n => n.Region).ToArray(), 1),
            ["time_bin_start"] = Coordinate(assembly.TimeBins.Select(b => (long)b.StartMs).ToArray(), 2),
            ["time_bin_end"] = Coordinate(assembly.TimeBins.Select(b => (long)b.EndMs).ToArray(), 2),
        };

        var temp = path + ".partial";
        try
        {
            file.Write(temp);
            var patched = FixedStringPatch.Apply(temp, window, overlap);
            if (patched != 2 * dims.Length) throw new InvalidOperationException($"expected to retype {2 * dims.Length} CLASS/NAME attributes, retyped {patched}: PureHDF's layout changed");
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            File.Delete(temp);
        }
    }

    // See FixedStringPatch: written as an opaque value of the right size, turned into a fixed-length string afterwards.
    private static H5Attribute FixedString(string text, int size)
    {
        var bytes = new byte[size];
        var encoded = Encoding.ASCII.GetBytes(text);
        if (encoded.Length >= size) throw new ArgumentException($"'{text}' does not fit in {size - 1} bytes", nameof(text));
        encoded.CopyTo(bytes, 0);
        return new H5Attribute(bytes, dimensions: [], opaqueInfo: new H5OpaqueInfo((uint)size, ""));
    }

    /// <summary>
    /// Why this exists: netCDF-C finds dimensions through HDF5's <c>H5DSis_scale</c>, which (HDF5 1.10) accepts only a
    /// CLASS attribute that is a NUL-terminated fixed-length string of exactly 16 bytes; the NAME attribute must be fixed
    /// length too. PureHDF 2.2 has one string length for a whole file (<c>DefaultStringLength</c>), and the coordinates
    /// must stay variable-length (netCDF-C mis-reads fixed-length string variables). So those two attributes are
    /// written as opaque values with an empty tag — the same size and bytes — and their datatype is then rewritten in
    /// place from opaque to string (the empty tag's padding removed), and the object header's Jenkins lookup3 checksum is recomputed. The
    /// patch verifies the checksum before touching a header, so an unexpected layout fails loudly instead of writing a
    /// corrupt file.
    /// </summary>
    internal static class FixedStringPatch
    {
        public const int Window = 8 << 20;
        public const int Overlap = 64 << 10;   // far more than a dimension scale's object header

        /// <summary>Patches the file in place, scanning it in overlapping windows (assemblies can exceed 2 GB).</summary>
        public static int Apply(string path, int window = Window, int overlap = Overlap)
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
            var buffer = new byte[window];
            var patched = 0;
            long offset = 0;
            while (true)
            {
                stream.Position = offset;
                var read = stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
                var last = offset + read >= stream.Length;
                // Each window owns the candidates in [from, to): the margins let a header around a candidate fit.
                var from = offset == 0 ? 0 : overlap;
                var to = last ? read : read - overlap;
                var view = read == buffer.Length ? buffer : buffer[..read];
                foreach (var (start, end) in Patch(view, from, to))
                {
                    stream.Position = offset + start;
                    stream.Write(view, start, end - start);
                    patched++;
                }
                if (last) break;
                offset += read - (2 * overlap);
            }
            return patched;
        }

        /// <summary>Patches candidates starting in [from, to) of <paramref name="file"/>; returns the rewritten header ranges.</summary>
        internal static List<(int Start, int End)> Patch(byte[] file, int from, int to)
        {
            var changed = new List<(int, int)>();
            foreach (var name in new[] { "CLASS", "NAME" })
            {
                var pattern = Encoding.ASCII.GetBytes(name + "\0");
                for (var at = IndexOf(file, pattern, from); at >= 0 && at < to; at = IndexOf(file, pattern, at + 1))
                {
                    var dt = at + pattern.Length;
                    // Opaque datatype message (class 5, any version), tag length 8 (an empty tag padded to 8), then size.
                    if (dt + 16 > file.Length || (file[dt] & 0x0F) != 5 || file[dt + 1] != 8 || file[dt + 2] != 0 || file[dt + 3] != 0) continue;
                    var (start, checksumAt) = EnclosingHeader(file, at);
                    if (Lookup3(file.AsSpan(start, checksumAt - start)) != BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(checksumAt)))
                    {
                        throw new InvalidOperationException($"unexpected HDF5 layout near byte {at}: object header checksum does not match before patching");
                    }
                    // Attribute message v3: ... datatype size (2), dataspace size (2), name encoding (1), name, datatype, dataspace, data.
                    var spaceSize = BinaryPrimitives.ReadUInt16LittleEndian(file.AsSpan(at - 3));
                    var dataSize = (int)BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(dt + 4));
                    file[dt] = (byte)((file[dt] & 0xF0) | 3);  // class 3 = string, same version
                    file[dt + 1] = 0;                          // NUL-terminated, ASCII
                    // A string datatype has no properties: drop the opaque tag's 8 bytes (readers such as PureHDF do not
                    // skip to the declared datatype size) and leave them as zero padding at the end of the message.
                    BinaryPrimitives.WriteUInt16LittleEndian(file.AsSpan(at - 5), 8);
                    file.AsSpan(dt + 16, spaceSize + dataSize).CopyTo(file.AsSpan(dt + 8));
                    file.AsSpan(dt + 8 + spaceSize + dataSize, 8).Clear();
                    BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(checksumAt), Lookup3(file.AsSpan(start, checksumAt - start)));
                    changed.Add((start, checksumAt + 4));
                }
            }
            return changed;
        }

        /// <summary>The version-2 object header ("OHDR") chunk 0 containing <paramref name="position"/>: its start and checksum offset.</summary>
        private static (int Start, int ChecksumAt) EnclosingHeader(byte[] file, int position)
        {
            var signature = "OHDR"u8.ToArray();
            for (var s = LastIndexOf(file, signature, position); s >= 0; s = LastIndexOf(file, signature, s - 1))
            {
                var flags = file[s + 5];
                var p = s + 6 + ((flags & 0x20) != 0 ? 16 : 0) + ((flags & 0x10) != 0 ? 4 : 0);
                var width = 1 << (flags & 0x03);
                ulong size = 0;
                for (var i = 0; i < width; i++) size |= (ulong)file[p + i] << (8 * i);
                var dataStart = p + width;
                var end = (long)dataStart + (long)size;
                if (position >= dataStart && position < end && end + 4 <= file.Length) return (s, (int)end);
            }
            throw new InvalidOperationException($"unexpected HDF5 layout: byte {position} is not inside a version-2 object header chunk");
        }

        private static int IndexOf(byte[] data, byte[] pattern, int from) => from > data.Length ? -1 : data.AsSpan(from).IndexOf(pattern) is var i and >= 0 ? from + i : -1;

        private static int LastIndexOf(byte[] data, byte[] pattern, int before) => before < 0 ? -1 : data.AsSpan(0, Math.Min(data.Length, before + pattern.Length)).LastIndexOf(pattern);

        /// <summary>Bob Jenkins' lookup3 <c>hashlittle</c> with initval 0, HDF5's metadata checksum (H5_checksum_lookup3).</summary>
        internal static uint Lookup3(ReadOnlySpan<byte> k)
        {
            uint a, b, c;
            a = b = c = 0xdeadbeef + (uint)k.Length;
            while (k.Length > 12)
            {
                a += BinaryPrimitives.ReadUInt32LittleEndian(k);
                b += BinaryPrimitives.ReadUInt32LittleEndian(k[4..]);
                c += BinaryPrimitives.ReadUInt32LittleEndian(k[8..]);
                a -= c; a ^= Rot(c, 4); c += b;
                b -= a; b ^= Rot(a, 6); a += c;
                c -= b; c ^= Rot(b, 8); b += a;
                a -= c; a ^= Rot(c, 16); c += b;
                b -= a; b ^= Rot(a, 19); a += c;
                c -= b; c ^= Rot(b, 4); b += a;
                k = k[12..];
            }
            if (k.Length == 0) return c;
            Span<byte> tail = stackalloc byte[12];
            tail.Clear();
            k.CopyTo(tail);
            a += BinaryPrimitives.ReadUInt32LittleEndian(tail);
            b += BinaryPrimitives.ReadUInt32LittleEndian(tail[4..]);
            c += BinaryPrimitives.ReadUInt32LittleEndian(tail[8..]);
            c ^= b; c -= Rot(b, 14);
            a ^= c; a -= Rot(c, 11);
            b ^= a; b -= Rot(a, 25);
            c ^= b; c -= Rot(b, 16);
            a ^= c; a -= Rot(c, 4);
            b ^= a; b -= Rot(a, 14);
            c ^= b; c -= Rot(b, 24);
            return c;
        }

        private static uint Rot(uint x, int k) => (x << k) | (x >> (32 - k));
    }
}
