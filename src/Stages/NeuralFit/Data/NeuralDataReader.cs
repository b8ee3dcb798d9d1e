namespace Pipeline.Stages.NeuralFit;

/// <summary>Responses, coordinates and stimulus images, checked against each other.</summary>
public sealed record NeuralDataset(NeuralAssembly Assembly, StimulusImages Images, string Source);

/// <summary>
/// Reads neural data in either supported format and validates it (<see cref="NeuralDataValidator"/>): a file is a
/// Brain-Score-style NetCDF4 assembly (<see cref="BrainScoreNetCdf"/>), a folder the plain format
/// (<see cref="PlainNeuralFormat"/>). Images come from <c>imagesPath</c> (folder or tar), by default from
/// <c>images/</c> or <c>images.tar</c> next to the file or inside the folder.
/// </summary>
public static class NeuralDataReader
{
    public static NeuralDataset Read(string path, string? imagesPath = null)
    {
        var assembly = Directory.Exists(path) ? PlainNeuralFormat.Read(path)
            : File.Exists(path) ? BrainScoreNetCdf.Read(path)
            : throw new NeuralDataException($"{path}: neither a NetCDF file nor a plain-format folder exists there");
        var images = StimulusImages.Open(imagesPath ?? DefaultImages(path));
        NeuralDataValidator.Validate(assembly, path, images);
        return new NeuralDataset(assembly, images, path);
    }

    private static string DefaultImages(string path)
    {
        var root = Directory.Exists(path) ? path : Path.GetDirectoryName(Path.GetFullPath(path))!;
        var folder = Path.Combine(root, "images");
        var tar = Path.Combine(root, "images.tar");
        return Directory.Exists(folder) || !File.Exists(tar) ? folder : tar;
    }
}
