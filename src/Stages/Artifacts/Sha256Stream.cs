using System.Security.Cryptography;

namespace Pipeline.Stages.Artifacts;

/// <summary>
/// A read-only pass-through stream that hashes what flows through it. With an expected hash it verifies at the end
/// of the stream, so a reader never finishes reading corrupt data without an error.
/// </summary>
public sealed class Sha256Stream(Stream inner, string? expectedSha256 = null, string? pathForErrors = null, bool leaveOpen = false) : Stream
{
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private string? _final;

    public long BytesRead { get; private set; }

    /// <summary>The lower-case hex sha256 of everything read; valid once the inner stream reached its end.</summary>
    public string Sha256 => _final ??= Convert.ToHexStringLower(_hash.GetHashAndReset());

    public static string Hex(ReadOnlySpan<byte> data) => Convert.ToHexStringLower(SHA256.HashData(data));

    public static async Task<string> HashAsync(Stream s, CancellationToken ct = default) =>
        Convert.ToHexStringLower(await SHA256.HashDataAsync(s, ct));

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var n = inner.Read(buffer);
        return Account(buffer[..n]);
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var n = await inner.ReadAsync(buffer, cancellationToken);
        return Account(buffer.Span[..n]);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    private int Account(ReadOnlySpan<byte> chunk)
    {
        if (chunk.Length > 0)
        {
            _hash.AppendData(chunk);
            BytesRead += chunk.Length;
        }
        else if (expectedSha256 is not null && _final is null && !string.Equals(Sha256, expectedSha256, StringComparison.OrdinalIgnoreCase))
        {
            throw new ArtifactCorruptedException(pathForErrors ?? "(stream)", expectedSha256, Sha256);
        }
        return chunk.Length;
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => inner.Length;
    public override long Position { get => BytesRead; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _hash.Dispose();
            if (!leaveOpen) inner.Dispose();
        }
        base.Dispose(disposing);
    }
}
