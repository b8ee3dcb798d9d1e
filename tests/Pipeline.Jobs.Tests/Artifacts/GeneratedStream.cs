namespace Pipeline.Jobs.Tests.Artifacts;

/// <summary>
/// A non-seekable stream of <paramref name="length"/> pseudo-random bytes made on the fly (xorshift64*), so a large
/// artifact never exists in memory. With <paramref name="failAfter"/> it throws once that many bytes were read,
/// like a producer that crashes midway; <paramref name="onRead"/> sees the position after each read.
/// </summary>
internal sealed class GeneratedStream(long length, ulong seed, long? failAfter = null, Action<long>? onRead = null) : Stream
{
    private ulong _state = seed | 1;
    private long _position;

    public static byte[] Bytes(int length, ulong seed)
    {
        var bytes = new byte[length];
        using var s = new GeneratedStream(length, seed);
        s.ReadExactly(bytes);
        return bytes;
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (failAfter is { } limit && _position >= limit)
        {
            throw new IOException($"generated source failed on purpose after {limit} bytes");
        }
        var n = (int)Math.Min(buffer.Length, length - _position);
        if (failAfter is { } l) n = (int)Math.Min(n, l - _position);
        for (var i = 0; i < n; i++)
        {
            _state ^= _state >> 12;
            _state ^= _state << 25;
            _state ^= _state >> 27;
            buffer[i] = (byte)((_state * 0x2545F4914F6CDD1DUL) >> 56);
        }
        _position += n;
        onRead?.Invoke(_position);
        return n;
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(Read(buffer.Span));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        Task.FromResult(Read(buffer.AsSpan(offset, count)));

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => _position; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
