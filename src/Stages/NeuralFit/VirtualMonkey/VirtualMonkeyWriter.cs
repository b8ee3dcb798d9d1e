namespace Pipeline.Stages.NeuralFit;

/// <summary>
/// Writes a virtual-monkey dataset as a folder: <c>assembly.nc</c> (Brain-Score-style NetCDF4, <see cref="BrainScoreNetCdf"/>),
/// <c>images/{stimulus_id}.png</c> and <c>ground_truth.json</c>. <see cref="NeuralDataReader.Read"/> reads the
/// folder's assembly.nc with its images. Built in a sibling temporary folder and moved into place: an error leaves nothing.
/// </summary>
public static class VirtualMonkeyWriter
{
    public const string AssemblyFile = "assembly.nc";
    public const string ImagesFolder = "images";
    public const string GroundTruthFile = "ground_truth.json";

    /// <summary>Writes into <paramref name="folder"/>, which must not exist or be empty; returns the files written.</summary>
    public static IReadOnlyList<string> Write(VirtualMonkeyData data, string folder)
    {
        folder = Path.GetFullPath(folder);
        if (Directory.Exists(folder) && Directory.EnumerateFileSystemEntries(folder).Any())
        {
            throw new NeuralDataException($"{folder}: the output folder is not empty; choose a new one");
        }
        var temp = $"{folder}.partial-{Guid.NewGuid():N}";
        try
        {
            Directory.CreateDirectory(Path.Combine(temp, ImagesFolder));
            BrainScoreNetCdf.Write(data.Assembly, Path.Combine(temp, AssemblyFile));
            foreach (var s in data.Stimuli) File.WriteAllBytes(Path.Combine(temp, ImagesFolder, s.StimulusId + ".png"), s.Png);
            File.WriteAllText(Path.Combine(temp, GroundTruthFile), System.Text.Json.JsonSerializer.Serialize(data.GroundTruth, PipelineJson.Options));
            if (Directory.Exists(folder)) Directory.Delete(folder);
            Directory.Move(temp, folder);
        }
        finally
        {
            if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
        }
        return [Path.Combine(folder, AssemblyFile), Path.Combine(folder, ImagesFolder), Path.Combine(folder, GroundTruthFile)];
    }
}
