using System.Formats.Tar;
using System.Text.Json;
using Pipeline.Stages.NeuralFit;
using TorchSharp;

namespace Pipeline.Stages.Tests.NeuralFit.Data;

public sealed class NeuralDataValidationTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("neuraldata-valid-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string PlainFolder(NeuralAssembly assembly, IEnumerable<string>? imageIds = null)
    {
        var folder = Path.Combine(_dir, $"plain{Guid.NewGuid():N}");
        PlainNeuralFormat.Write(assembly, folder);
        NeuralDataTestFiles.WriteImages(Path.Combine(folder, "images"), imageIds ?? assembly.StimulusIds);
        return folder;
    }

    private NeuralDataException Fails(NeuralAssembly assembly, IEnumerable<string>? imageIds = null)
    {
        var folder = PlainFolder(assembly, imageIds);
        var e = Assert.Throws<NeuralDataException>(() => NeuralDataReader.Read(folder));
        Assert.Contains(folder, e.Message);
        return e;
    }

    [Fact]
    public void Plain_format_round_trips_with_an_image_folder()
    {
        var assembly = NeuralDataTestFiles.Small();
        var read = NeuralDataReader.Read(PlainFolder(assembly));
        NeuralDataTestFiles.AssertEqual(assembly, read.Assembly);
        Assert.Equal(4, read.Images.Ids.Count);
        using var batch = read.Images.LoadBatch(read.Assembly.StimulusIds, 8);
        Assert.Equal([4L, 3, 8, 8], batch.shape);
    }

    [Fact]
    public void Plain_format_reads_safetensors_responses_and_a_tar_of_images()
    {
        var assembly = NeuralDataTestFiles.Small();
        var folder = PlainFolder(assembly);
        File.Delete(Path.Combine(folder, "responses.npy"));
        WriteSafetensors(Path.Combine(folder, "responses.safetensors"), assembly.Responses, [assembly.Presentations.Count, assembly.Neuroids.Count, assembly.TimeBins.Count]);
        var tar = Path.Combine(_dir, "stimuli.tar");
        TarFile.CreateFromDirectory(Path.Combine(folder, "images"), tar, includeBaseDirectory: true);
        Directory.Delete(Path.Combine(folder, "images"), recursive: true);
        var read = NeuralDataReader.Read(folder, tar);
        NeuralDataTestFiles.AssertEqual(assembly, read.Assembly);
        Assert.Equal(assembly.StimulusIds.Order(), read.Images.Ids.Order());
    }

    [Fact]
    public void Helpers_average_repetitions_stack_them_and_select_regions()
    {
        var assembly = NeuralDataTestFiles.Small(stimuli: 3, repetitions: 2, sites: 5, bins: 2);
        using var reps = assembly.Repetitions();
        Assert.Equal([2L, 3, 5, 2], reps.shape);
        using var mean = assembly.AveragedResponses();
        Assert.True(mean.allclose(reps.mean([0])));
        Assert.Equal(assembly[4, 1, 1], reps[1, 1, 1, 1].ToSingle());   // presentation 4 = stimulus 1, repetition 1
        Assert.Equal([1, 2, 3, 4], assembly.SitesOf("IT"));             // pIT, IT, cIT, aIT
        Assert.Equal([1], assembly.SitesOf("pIT"));
        Assert.Equal([0], assembly.SitesOf("V4"));
    }

    [Fact]
    public void Stimuli_without_images_are_listed()
    {
        var assembly = NeuralDataTestFiles.Small(stimuli: 14);
        var e = Fails(assembly, assembly.StimulusIds.Take(2));
        Assert.Contains("12 stimuli have no image", e.Message);
        Assert.Contains("stim002, stim003", e.Message);
        Assert.Contains("and 2 more", e.Message);
    }

    [Fact]
    public void Images_without_responses_are_listed()
    {
        var assembly = NeuralDataTestFiles.Small();
        var e = Fails(assembly, [.. assembly.StimulusIds, "orphan_a", "orphan_b"]);
        Assert.Contains("2 images in", e.Message);
        Assert.Contains("have no responses: orphan_a, orphan_b", e.Message);
    }

    [Fact]
    public void Non_finite_responses_name_stimulus_neuroid_and_bin()
    {
        var assembly = NeuralDataTestFiles.Small();
        assembly.Responses[(((1 * 3) + 2) * 3) + 1] = float.NaN;                 // presentation 1, site 2, bin 1
        assembly.Responses[^1] = float.PositiveInfinity;
        var e = Fails(assembly);
        Assert.Contains("2 responses are NaN or infinite", e.Message);
        Assert.Contains("stim001/site02/80-90ms (NaN)", e.Message);
        Assert.Contains("stim003/site02/90-100ms (+inf)", e.Message);
    }

    [Fact]
    public void Stimuli_with_fewer_than_two_repetitions_are_listed()
    {
        var full = NeuralDataTestFiles.Small(stimuli: 3, repetitions: 2);
        // Drop the second repetition of stim001 and stim002.
        var keep = Enumerable.Range(0, full.Presentations.Count).Where(p => !(full.Presentations[p].Repetition == 1 && full.Presentations[p].StimulusId != "stim000")).ToList();
        var width = full.Neuroids.Count * full.TimeBins.Count;
        var responses = keep.SelectMany(p => full.Responses.Skip(p * width).Take(width)).ToArray();
        var assembly = new NeuralAssembly(responses, [.. keep.Select(p => full.Presentations[p])], full.Neuroids, full.TimeBins);
        var e = Fails(assembly);
        Assert.Contains("2 stimuli have fewer than two repetitions", e.Message);
        Assert.Contains("stim001, stim002", e.Message);
        var stack = Assert.Throws<NeuralDataException>(() => assembly.Repetitions());
        Assert.Contains("1 repetitions: stim001, stim002", stack.Message);
    }

    [Fact]
    public void Unknown_regions_are_listed_with_the_allowed_ones()
    {
        var small = NeuralDataTestFiles.Small();
        var assembly = new NeuralAssembly(small.Responses, small.Presentations, [new("site00", "V4"), new("site01", "V1"), new("site02", "MT")], small.TimeBins);
        var e = Fails(assembly);
        Assert.Contains("2 neuroids have an unknown region (allowed: V4, IT, pIT, cIT, aIT): site01 (V1), site02 (MT)", e.Message);
    }

    [Fact]
    public void Shapes_that_do_not_match_the_coordinates_are_named()
    {
        var assembly = NeuralDataTestFiles.Small();
        var folder = PlainFolder(assembly);
        File.AppendAllLines(Path.Combine(folder, "neuroids.csv"), ["site99,IT"]);
        var e = Assert.Throws<NeuralDataException>(() => NeuralDataReader.Read(folder));
        Assert.Contains("responses.npy", e.Message);
        Assert.Contains("neuroid axis 3 vs 4 rows in neuroids.csv", e.Message);
    }

    [Fact]
    public void Missing_coordinate_columns_are_named_in_the_plain_format_and_in_NetCDF()
    {
        var assembly = NeuralDataTestFiles.Small();
        var folder = PlainFolder(assembly);
        File.WriteAllLines(Path.Combine(folder, "presentations.csv"), ["stimulus_id,repetition", .. assembly.Presentations.Select(p => $"{p.StimulusId},{p.Repetition}")]);
        var e = Assert.Throws<NeuralDataException>(() => NeuralDataReader.Read(folder));
        Assert.Contains("presentations.csv: missing column(s) object_name", e.Message);

        var nc = Path.Combine(_dir, "no_object.nc");
        NeuralDataTestFiles.RunPython($$"""
            import numpy as np, xarray as xr
            da = xr.DataArray(np.zeros((4, 2, 1), dtype=np.float32), dims=("presentation", "neuroid", "time_bin"), coords={
                "stimulus_id": ("presentation", ["a", "b", "a", "b"]), "repetition": ("presentation", [0, 0, 1, 1]),
                "neuroid_id": ("neuroid", ["n0", "n1"]), "region": ("neuroid", ["V4", "IT"]),
                "time_bin_start": ("time_bin", [70]), "time_bin_end": ("time_bin", [170])})
            da.to_netcdf("{{nc}}")
            """, _dir);
        var n = Assert.Throws<NeuralDataException>(() => BrainScoreNetCdf.Read(nc));
        Assert.Contains(nc, n.Message);
        Assert.Contains("missing coordinate 'object_name' along 'presentation' (coordinates along it: repetition, stimulus_id)", n.Message);
    }

    [Fact]
    public void Every_problem_is_reported_at_once()
    {
        var small = NeuralDataTestFiles.Small();
        small.Responses[0] = float.NaN;
        var assembly = new NeuralAssembly(small.Responses, small.Presentations, [new("site00", "V4"), new("site01", "LGN"), new("site02", "IT")], small.TimeBins);
        var problems = NeuralDataValidator.Problems(assembly, null).ToList();
        Assert.Equal(2, problems.Count);
    }

    private static void WriteSafetensors(string path, float[] values, long[] shape)
    {
        var header = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["responses"] = new { dtype = "F32", shape, data_offsets = new[] { 0L, values.Length * 4L } },
        });
        var padded = header.PadRight((header.Length + 7) / 8 * 8);
        using var stream = File.Create(path);
        stream.Write(BitConverter.GetBytes((ulong)padded.Length));
        stream.Write(System.Text.Encoding.UTF8.GetBytes(padded));
        var bytes = new byte[values.Length * 4];
        Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
        stream.Write(bytes);
    }
}
