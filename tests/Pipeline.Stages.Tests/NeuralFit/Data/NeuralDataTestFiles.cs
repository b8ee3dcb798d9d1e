using System.Diagnostics;
using Pipeline.Stages.NeuralFit;
using SkiaSharp;

namespace Pipeline.Stages.Tests.NeuralFit.Data;

/// <summary>Small assemblies, image folders and the Debian python3 (xarray + netCDF4) the cross-checks run.</summary>
internal static class NeuralDataTestFiles
{
    public const string Python = "/usr/bin/python3";
    public const string Install = "apt-get install -y python3-xarray python3-netcdf4";

    /// <summary>S stimuli × R repetitions, sites in V4 and IT sub-regions, 3 bins; values encode their indices.</summary>
    public static NeuralAssembly Small(int stimuli = 4, int repetitions = 2, int sites = 3, int bins = 3)
    {
        var presentations = new List<Presentation>();
        for (var r = 0; r < repetitions; r++)
            for (var s = 0; s < stimuli; s++) presentations.Add(new Presentation($"stim{s:D3}", r, s % 2 == 0 ? "car" : "face"));
        var regions = new[] { "V4", "pIT", "IT", "cIT", "aIT" };
        var neuroids = Enumerable.Range(0, sites).Select(i => new Neuroid($"site{i:D2}", regions[i % regions.Length])).ToList();
        var timeBins = Enumerable.Range(0, bins).Select(b => new TimeBin(70 + (10 * b), 80 + (10 * b))).ToList();
        var responses = new float[presentations.Count * sites * bins];
        for (var i = 0; i < responses.Length; i++) responses[i] = (i * 0.25f) - 3f;
        return new NeuralAssembly(responses, presentations, neuroids, timeBins);
    }

    public static void WriteImages(string folder, IEnumerable<string> ids, int size = 16)
    {
        Directory.CreateDirectory(folder);
        foreach (var id in ids)
        {
            using var bitmap = new SKBitmap(new SKImageInfo(size, size, SKColorType.Rgba8888, SKAlphaType.Opaque));
            bitmap.Erase(new SKColor((byte)(id.GetHashCode() & 0xFF), 100, 50));
            File.WriteAllBytes(Path.Combine(folder, id + ".png"), Pipeline.Stages.Data.ImageCodec.Encode(bitmap, Pipeline.Stages.Data.ShardImageFormat.Png, 90));
        }
    }

    public static void AssertEqual(NeuralAssembly expected, NeuralAssembly actual)
    {
        Assert.Equal(expected.Presentations, actual.Presentations);
        Assert.Equal(expected.Neuroids, actual.Neuroids);
        Assert.Equal(expected.TimeBins, actual.TimeBins);
        Assert.Equal(expected.Responses, actual.Responses);
    }

    /// <summary>Runs a Python script (fails with the install hint when xarray/netCDF4 are missing); returns stdout.</summary>
    public static string RunPython(string script, string dir)
    {
        Assert.True(File.Exists(Python), $"{Python} is missing; {Install}");
        var probe = Run("-c \"import xarray, netCDF4\"", dir);
        Assert.True(probe.ExitCode == 0, $"python3 cannot import xarray and netCDF4 ({probe.Stderr.Trim()}); {Install}");
        var path = Path.Combine(dir, $"check_{Guid.NewGuid():N}.py");
        File.WriteAllText(path, script);
        var result = Run($"\"{path}\"", dir);
        Assert.True(result.ExitCode == 0, $"python3 failed ({result.ExitCode}):\n{result.Stderr}\n{result.Stdout}");
        return result.Stdout;
    }

    private static (int ExitCode, string Stdout, string Stderr) Run(string args, string dir)
    {
        var psi = new ProcessStartInfo(Python, args) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = dir };
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        return (p.ExitCode, stdout.Result, stderr.Result);
    }
}
