using System.Text.Json;
using Pipeline.Stages.NeuralFit;

namespace Pipeline.Stages.Tests.NeuralFit.Data;

public sealed class NeuralDataNetCdfTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("neuraldata-nc-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void A_written_assembly_reads_back_equal()
    {
        var assembly = NeuralDataTestFiles.Small();
        var path = Path.Combine(_dir, "a.nc");
        BrainScoreNetCdf.Write(assembly, path);
        NeuralDataTestFiles.AssertEqual(assembly, BrainScoreNetCdf.Read(path));
        Assert.False(File.Exists(path + ".partial"));
    }

    [Fact]
    public void Python_xarray_reads_the_CSharp_written_file_with_named_dims_and_coordinates()
    {
        var assembly = NeuralDataTestFiles.Small(stimuli: 5, repetitions: 3, sites: 4, bins: 2);
        var path = Path.Combine(_dir, "csharp.nc");
        BrainScoreNetCdf.Write(assembly, path);
        var output = NeuralDataTestFiles.RunPython($$"""
            import json, xarray as xr, numpy as np, h5py
            da = xr.open_dataarray("{{path}}")
            with h5py.File("{{path}}", "r") as f:
                scales = [bool(h5py.h5ds.is_scale(f[d].id)) for d in ("presentation", "neuroid", "time_bin")]
            print(json.dumps({
                "dims": list(da.dims), "shape": list(da.shape),
                "stimulus_id": [str(s) for s in da.stimulus_id.values], "repetition": [int(r) for r in da.repetition.values],
                "object_name": [str(s) for s in da.object_name.values], "neuroid_id": [str(s) for s in da.neuroid_id.values],
                "region": [str(s) for s in da.region.values], "time_bin_start": [int(v) for v in da.time_bin_start.values],
                "time_bin_end": [int(v) for v in da.time_bin_end.values], "values": [float(v) for v in da.values.ravel()],
                "scales": scales}))
            """, _dir);
        using var json = JsonDocument.Parse(output);
        var root = json.RootElement;
        string[] Strings(string name) => [.. root.GetProperty(name).EnumerateArray().Select(e => e.GetString()!)];
        int[] Ints(string name) => [.. root.GetProperty(name).EnumerateArray().Select(e => e.GetInt32())];
        Assert.Equal(["presentation", "neuroid", "time_bin"], Strings("dims"));
        Assert.Equal([15, 4, 2], Ints("shape"));
        Assert.Equal(assembly.Presentations.Select(p => p.StimulusId), Strings("stimulus_id"));
        Assert.Equal(assembly.Presentations.Select(p => p.Repetition), Ints("repetition"));
        Assert.Equal(assembly.Presentations.Select(p => p.ObjectName), Strings("object_name"));
        Assert.Equal(assembly.Neuroids.Select(n => n.NeuroidId), Strings("neuroid_id"));
        Assert.Equal(assembly.Neuroids.Select(n => n.Region), Strings("region"));
        Assert.Equal(assembly.TimeBins.Select(b => b.StartMs), Ints("time_bin_start"));
        Assert.Equal(assembly.TimeBins.Select(b => b.EndMs), Ints("time_bin_end"));
        Assert.Equal(assembly.Responses, root.GetProperty("values").EnumerateArray().Select(e => (float)e.GetDouble()));
        Assert.All(root.GetProperty("scales").EnumerateArray(), e => Assert.True(e.GetBoolean()));
    }

    [Fact]
    public void CSharp_reads_an_xarray_written_Brain_Score_assembly_with_multiindex_levels_and_char_array_strings()
    {
        var path = Path.Combine(_dir, "xarray.nc");
        NeuralDataTestFiles.RunPython($$"""
            import numpy as np, xarray as xr
            P, N, T = 6, 4, 3
            data = np.arange(P * N * T, dtype=np.float32).reshape(N, P, T).transpose(1, 0, 2) * 0.5
            da = xr.DataArray(data.transpose(1, 0, 2), dims=("neuroid", "presentation", "time_bin"), coords={
                "stimulus_id": ("presentation", np.array(["s0", "s1", "s2", "s0", "s1", "s2"], dtype="S")),
                "repetition": ("presentation", [0, 0, 0, 1, 1, 1]),
                "object_name": ("presentation", ["car", "dog", "car", "car", "dog", "car"]),
                "neuroid_id": ("neuroid", ["n0", "n1", "n2", "n3"]),
                "region": ("neuroid", ["V4", "V4", "pIT", "aIT"]),
                "time_bin_start": ("time_bin", [70, 80, 90]),
                "time_bin_end": ("time_bin", [80, 90, 100])})
            da = da.set_index(presentation=["stimulus_id", "repetition", "object_name"], neuroid=["neuroid_id", "region"],
                              time_bin=["time_bin_start", "time_bin_end"])
            da.reset_index(["presentation", "neuroid", "time_bin"]).to_netcdf("{{path}}")
            """, _dir);
        var assembly = BrainScoreNetCdf.Read(path);
        Assert.Equal(["s0", "s1", "s2", "s0", "s1", "s2"], assembly.Presentations.Select(p => p.StimulusId));
        Assert.Equal([0, 0, 0, 1, 1, 1], assembly.Presentations.Select(p => p.Repetition));
        Assert.Equal(["car", "dog", "car", "car", "dog", "car"], assembly.Presentations.Select(p => p.ObjectName));
        Assert.Equal(["V4", "V4", "pIT", "aIT"], assembly.Neuroids.Select(n => n.Region));
        Assert.Equal([new TimeBin(70, 80), new TimeBin(80, 90), new TimeBin(90, 100)], assembly.TimeBins);
        // The file's dims are (neuroid, presentation, time_bin); the reader puts presentation first.
        for (var p = 0; p < 6; p++)
            for (var n = 0; n < 4; n++)
                for (var t = 0; t < 3; t++) Assert.Equal((((n * 6) + p) * 3 + t) * 0.5f, assembly[p, n, t]);
        Assert.Equal([2, 3], assembly.SitesOf("IT"));
    }

    [Fact]
    public void The_patch_scans_large_files_in_windows_and_finds_every_dimension_scale()
    {
        // Small windows over a ~40 kB file: headers straddle window edges the way they would in a multi-GB assembly.
        var assembly = NeuralDataTestFiles.Small(stimuli: 40, repetitions: 4, sites: 10, bins: 26);
        var path = Path.Combine(_dir, "windows.nc");
        BrainScoreNetCdf.Write(assembly, path, window: 2048, overlap: 512);
        NeuralDataTestFiles.AssertEqual(assembly, BrainScoreNetCdf.Read(path));
        var output = NeuralDataTestFiles.RunPython($$"""
            import xarray as xr
            da = xr.open_dataarray("{{path}}")
            print(list(da.dims), da.shape)
            """, _dir);
        Assert.Equal("['presentation', 'neuroid', 'time_bin'] (160, 10, 26)", output.Trim());
    }

    [Fact]
    public void The_fixed_string_patch_keeps_a_valid_lookup3_checksum()
    {
        // Known value from Bob Jenkins' lookup3.c driver: hashlittle("Four score and seven years ago", 30, 0).
        Assert.Equal(0x17770551u, BrainScoreNetCdf.FixedStringPatch.Lookup3("Four score and seven years ago"u8));
        Assert.Equal(0xdeadbeefu, BrainScoreNetCdf.FixedStringPatch.Lookup3([]));
    }
}
