using System.Formats.Tar;

namespace Pipeline.Stages.Data;

/// <summary>
/// Writes one split's samples, in the order given, into WebDataset tar shards <c>{split}-{NNNNNN}.tar</c>
/// (<c>{key}.png|jpg</c> + <c>{key}.cls</c> per sample). A shard closes before a sample would take it past the byte or
/// sample limit; a single sample larger than the byte limit gets a shard of its own. Each tar is built in a scratch
/// file and handed to <c>commit</c>, which uploads it; the scratch file is deleted afterwards.
/// </summary>
internal sealed class ShardWriter(
    string split,
    string scratchFolder,
    long maxBytes,
    int? maxSamples,
    Func<string, string, int, CancellationToken, Task> commit) : IAsyncDisposable
{
    /// <summary>The mtime of every entry; a fixed value keeps shards byte-identical across runs.</summary>
    public static readonly DateTimeOffset EntryTime = new(2000, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private const UnixFileMode EntryMode =
        UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    // A tar ends with two zero blocks.
    private const int EndOfArchiveBytes = 1024;

    private FileStream? _file;
    private TarWriter? _tar;
    private string? _tempPath;
    private long _bytes;
    private int _samples;

    public int ShardsWritten { get; private set; }

    /// <summary>Bytes a tar entry with <paramref name="dataLength"/> bytes of data takes: header plus padded data.</summary>
    public static long EntryBytes(long dataLength) => 512 + (dataLength + 511) / 512 * 512;

    public static string ShardFileName(string split, int number) => $"{split}-{number:D6}.tar";

    public async Task AddAsync(string key, string imageExtension, byte[] image, int classIndex, CancellationToken ct)
    {
        var cls = System.Text.Encoding.ASCII.GetBytes(classIndex.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var size = EntryBytes(image.Length) + EntryBytes(cls.Length);
        if (_tar is not null && (_bytes + size + EndOfArchiveBytes > maxBytes || _samples >= maxSamples))
            await CloseShardAsync(ct);
        if (_tar is null) OpenShard();
        WriteEntry(_tar!, $"{key}.{imageExtension}", image);
        WriteEntry(_tar!, $"{key}.cls", cls);
        _bytes += size;
        _samples++;
    }

    /// <summary>Closes and commits the last shard, if it holds any sample.</summary>
    public Task CompleteAsync(CancellationToken ct) => _tar is null ? Task.CompletedTask : CloseShardAsync(ct);

    private void OpenShard()
    {
        _tempPath = Path.Combine(scratchFolder, $"{ShardFileName(split, ShardsWritten)}.partial");
        _file = new FileStream(_tempPath, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        _tar = new TarWriter(_file, TarEntryFormat.Ustar, leaveOpen: true);
        (_bytes, _samples) = (0, 0);
    }

    private async Task CloseShardAsync(CancellationToken ct)
    {
        var samples = _samples;
        await _tar!.DisposeAsync();
        await _file!.DisposeAsync();
        (_tar, _file) = (null, null);
        var name = ShardFileName(split, ShardsWritten);
        await commit(name, _tempPath!, samples, ct);
        File.Delete(_tempPath!);
        _tempPath = null;
        ShardsWritten++;
    }

    private static void WriteEntry(TarWriter tar, string name, byte[] data)
    {
        // ustar has no atime/ctime and no PAX records; owner and group are fixed, so only the data varies.
        var entry = new UstarTarEntry(TarEntryType.RegularFile, name)
        {
            ModificationTime = EntryTime,
            Mode = EntryMode,
            Uid = 0,
            Gid = 0,
            UserName = "",
            GroupName = "",
            DataStream = new MemoryStream(data, writable: false),
        };
        tar.WriteEntry(entry);
    }

    public async ValueTask DisposeAsync()
    {
        if (_tar is not null) await _tar.DisposeAsync();
        if (_file is not null) await _file.DisposeAsync();
        if (_tempPath is not null && File.Exists(_tempPath)) File.Delete(_tempPath);
    }
}
