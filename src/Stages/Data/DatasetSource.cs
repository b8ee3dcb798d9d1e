using SkiaSharp;

namespace Pipeline.Stages.Data;

public enum ShardSplitName
{
    Train,
    Val,
}

/// <summary>
/// One dataset as the shard stage sees it: classes, and per split a count of items that can be loaded by index.
/// <see cref="Load"/> must be thread-safe and a pure function of (split, index): the stage loads items in parallel.
/// </summary>
internal interface IDatasetSource
{
    IReadOnlyList<string> Classes { get; }

    /// <summary>1 (grey) or 3 (RGB): what every encoded image of this dataset has.</summary>
    int Channels { get; }

    int Count(ShardSplitName split);

    /// <summary>Decodes item <paramref name="index"/>; a bad item gives a skip reason instead of an exception.</summary>
    SourceImage Load(ShardSplitName split, int index);

    /// <summary>How the manifest names an item in a skip list (a relative file path, or an index).</summary>
    string Describe(ShardSplitName split, int index);

    /// <summary>Class index of an item without loading it.</summary>
    int ClassOf(ShardSplitName split, int index);
}

/// <summary>A decoded image (the caller disposes it) or the reason the item is skipped.</summary>
internal readonly record struct SourceImage(SKBitmap? Bitmap, string? SkipReason)
{
    public static SourceImage Skip(string reason) => new(null, reason);
}
