using Pipeline.Stages.Execution;

namespace Pipeline.Stages.Data;

/// <summary>
/// An ImageNet-style folder: <c>root/{train,val}/{class}/*.{jpg,jpeg,png}</c>, or <c>root/{class}/*</c> split into
/// train/val per class by a seeded shuffle. Classes are the folder names in ordinal order. Only file paths are held
/// in memory, so ImageNet-size folders work.
/// </summary>
internal sealed class FolderDataset : IDatasetSource
{
    private static readonly string[] Extensions = [".jpg", ".jpeg", ".png"];

    private readonly string _root;
    private readonly string[] _classes;
    private readonly int? _decodeShortSide;
    private readonly (string Path, int Class)[][] _items = new (string, int)[2][];

    public FolderDataset(string root, double valFraction, long seed, int? decodeShortSide = null)
    {
        _decodeShortSide = decodeShortSide;
        _root = Path.GetFullPath(root);
        if (!Directory.Exists(_root))
            throw new StageInputException($"Dataset folder '{_root}' does not exist. Set source.path to a folder holding train/ and val/ (each with one subfolder per class) or one subfolder per class.");

        var trainDir = Path.Combine(_root, "train");
        if (Directory.Exists(trainDir))
        {
            var valDir = Path.Combine(_root, "val");
            if (!Directory.Exists(valDir))
                throw new StageInputException($"Dataset folder '{_root}' has train/ but no val/ ('{valDir}'). Add val/ with the same class subfolders, or move the class folders up to '{_root}' and use source.val_fraction.");
            _classes = ClassFolders(trainDir);
            _items[0] = ListSplit(trainDir, _classes);
            _items[1] = ListSplit(valDir, _classes);
            SplitLayout = "train/val folders";
        }
        else
        {
            _classes = ClassFolders(_root);
            var all = ListSplit(_root, _classes);
            (_items[0], _items[1]) = SplitByClass(all, valFraction, seed);
            SplitLayout = $"class folders, val_fraction {valFraction}";
        }
    }

    public IReadOnlyList<string> Classes => _classes;
    public string SplitLayout { get; }
    public int Channels => 3;
    public int Count(ShardSplitName split) => _items[(int)split].Length;
    public int ClassOf(ShardSplitName split, int index) => _items[(int)split][index].Class;
    public string Describe(ShardSplitName split, int index) => Path.GetRelativePath(_root, _items[(int)split][index].Path).Replace('\\', '/');

    public SourceImage Load(ShardSplitName split, int index)
    {
        var path = _items[(int)split][index].Path;
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return SourceImage.Skip($"unreadable: {e.Message}");
        }
        if (bytes.Length == 0) return SourceImage.Skip("empty file (0 bytes)");
        var bitmap = ImageCodec.DecodeRgb(bytes, _decodeShortSide);
        return bitmap is null
            ? SourceImage.Skip($"not a decodable JPEG/PNG ({bytes.Length} bytes; corrupt, truncated, another format, or over {ImageCodec.MaxPixels} pixels)")
            : new SourceImage(bitmap, null);
    }

    private static string[] ClassFolders(string dir)
    {
        var classes = Directory.GetDirectories(dir)
            .Select(Path.GetFileName)
            .OfType<string>()
            .Where(n => !n.StartsWith('.'))
            .Order(StringComparer.Ordinal)
            .ToArray();
        if (classes.Length == 0)
            throw new StageInputException($"Dataset folder '{dir}' has no class subfolders. Put each class's images in its own subfolder ('{dir}/<class>/*.jpg').");
        return classes;
    }

    private static (string, int)[] ListSplit(string dir, string[] classes)
    {
        var extra = ClassFolders(dir).Except(classes, StringComparer.Ordinal).ToList();
        if (extra.Count > 0)
            throw new StageInputException($"Folder '{dir}' has class folders that train/ lacks: {string.Join(", ", extra.Take(10))}. Every class needs train images; add them to train/ or remove the folders.");

        var items = new List<(string, int)>();
        for (var c = 0; c < classes.Length; c++)
        {
            var classDir = Path.Combine(dir, classes[c]);
            if (!Directory.Exists(classDir))
                throw new StageInputException($"Class folder '{classDir}' is missing (the class exists in train/). Add its images or remove the class from train/.");
            var files = Directory.EnumerateFiles(classDir)
                .Where(f => Extensions.Contains(Path.GetExtension(f).ToLowerInvariant()) && !Path.GetFileName(f).StartsWith('.'))
                .Order(StringComparer.Ordinal)
                .ToList();
            if (files.Count == 0)
                throw new StageInputException($"Class folder '{classDir}' has no .jpg, .jpeg or .png files. Add images or remove the folder.");
            items.AddRange(files.Select(f => (f, c)));
        }
        return items.ToArray();
    }

    /// <summary>Holds out round(n * fraction) files of each class, chosen by a shuffle seeded with (seed, class).</summary>
    private static ((string, int)[] Train, (string, int)[] Val) SplitByClass((string Path, int Class)[] all, double fraction, long seed)
    {
        var train = new List<(string, int)>();
        var val = new List<(string, int)>();
        foreach (var group in all.GroupBy(i => i.Class))
        {
            var files = group.ToArray();
            // Keep at least one train image per class, so a small class cannot vanish from train.
            var held = Math.Min((int)Math.Round(files.Length * fraction), files.Length - 1);
            var order = DeterministicRandom.Permutation(files.Length, DeterministicRandom.Mix((ulong)seed, 0x5A11, (ulong)group.Key));
            var isVal = new bool[files.Length];
            foreach (var i in order.Take(held)) isVal[i] = true;
            for (var i = 0; i < files.Length; i++) (isVal[i] ? val : train).Add(files[i]);
        }
        return (train.ToArray(), val.ToArray());
    }
}
