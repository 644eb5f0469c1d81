using System.Buffers.Binary;
using System.Runtime.Serialization;
using Akka.Actor;
using DistributedInference.Actors.Kernel.Wire;

namespace DistributedInference.Actors.Kernel.Transport;

/// <summary>
/// A data plane frame: its length (int64), then the target's and the sender's serialized actor paths and the
/// message's manifest (strings), then the message as <see cref="DistributedInferenceSerializer"/> writes it.
/// </summary>
internal static class DataPlaneFrame
{
    public const int HeaderSize = sizeof(long);

    /// <summary>
    /// Writes one frame to <paramref name="output"/>: the body is serialized twice, once only to count its bytes (the
    /// length goes first), then into the output, so tensor bytes go from the tensor's memory to the output without
    /// an intermediate buffer (a <see cref="BufferedStream"/> passes writes larger than its buffer straight through).
    /// </summary>
    public static void Write(Stream output, DistributedInferenceSerializer serializer, Outgoing outgoing)
    {
        var target = Akka.Serialization.Serialization.SerializedActorPath(outgoing.Target);
        var sender = outgoing.Sender is null || outgoing.Sender.IsNobody() ? string.Empty : Akka.Serialization.Serialization.SerializedActorPath(outgoing.Sender);
        var manifest = serializer.Manifest(outgoing.Message);
        var counter = new CountingStream();
        WriteBody(counter, serializer, target, sender, manifest, outgoing.Message);
        Span<byte> header = stackalloc byte[HeaderSize];
        BinaryPrimitives.WriteInt64LittleEndian(header, counter.Length);
        output.Write(header);
        WriteBody(output, serializer, target, sender, manifest, outgoing.Message);
        output.Flush();
        DataPlaneMetrics.Wrote(HeaderSize + counter.Length);
    }

    private static void WriteBody(Stream stream, DistributedInferenceSerializer serializer, string target, string sender, string manifest, object message)
    {
        using var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true);
        ValueCodec.WriteString(writer, target);
        ValueCodec.WriteString(writer, sender);
        ValueCodec.WriteString(writer, manifest);
        serializer.Write(writer, message);
        writer.Flush();
    }

    // Counts what is written to it, keeps nothing.
    private sealed class CountingStream : Stream
    {
        private long _length;

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => _length;

        public override long Position
        {
            get => _length;
            set => throw new NotSupportedException();
        }

        public override void Write(byte[] buffer, int offset, int count) => _length += count;

        public override void Write(ReadOnlySpan<byte> buffer) => _length += buffer.Length;

        public override void WriteByte(byte value) => _length++;

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}

/// <summary>
/// A frame the data plane will not read: malformed, over a limit, too slow, refused by the receiver's checks, or cut
/// off. The only exception <see cref="DataPlaneFrameReader.Next"/> lets out; the connection it came on is dropped.
/// </summary>
public sealed class BadFrameException(string message, Exception? inner = null) : IOException(message, inner);

/// <summary>
/// Reads frames off a connection, parsing each straight from the socket: tensor bytes go from the socket into the new
/// tensor without an intermediate buffer. A frame over the size limit is refused before any of it is read; the
/// target, sender and manifest are bounded and shown to <c>check</c> before the body is read; every count and tensor
/// size inside is checked against the bytes left in its frame, and managed allocations grow with the bytes read
/// (<see cref="ValueCodec"/>). A frame must arrive within <c>readTimeout</c> plus its length at
/// <c>minimumBytesPerSecond</c>.
/// </summary>
internal sealed class DataPlaneFrameReader(Stream stream, long maximumFrameSize, TimeSpan readTimeout, long minimumBytesPerSecond, Action<bool>? inFrame = null)
{
    public const int MaximumPathBytes = 1024;
    public const int MaximumManifestBytes = 64;

    private readonly byte[] _header = new byte[DataPlaneFrame.HeaderSize];

    /// <summary>The bytes of the last frame <see cref="Next"/> read (its header included).</summary>
    public long LastFrameBytes { get; private set; }

    /// <summary>
    /// The next frame's target and sender paths and message, or null when the other side closed between frames.
    /// <paramref name="check"/> sees target, sender and manifest first and throws to refuse the frame.
    /// </summary>
    /// <exception cref="BadFrameException">Anything wrong with the frame or the connection (the only exception let out).</exception>
    public (string Target, string Sender, object Message)? Next(DistributedInferenceSerializer serializer, Action<string, string, string>? check = null)
    {
        try
        {
            inFrame?.Invoke(false);
            var read = stream.ReadAtLeast(_header, _header.Length, throwOnEndOfStream: false);
            if (read == 0)
            {
                return null;
            }

            inFrame?.Invoke(true);
            if (read < _header.Length)
            {
                throw new EndOfStreamException("connection closed inside a frame header");
            }

            var length = BinaryPrimitives.ReadInt64LittleEndian(_header);
            if (length <= 0 || length > maximumFrameSize)
            {
                throw new SerializationException($"frame of {length} bytes (at most {maximumFrameSize})");
            }

            LastFrameBytes = _header.Length + length;
            var deadline = readTimeout + TimeSpan.FromSeconds((double)length / minimumBytesPerSecond);
            using var reader = new BinaryReader(new FrameStream(stream, length, deadline), System.Text.Encoding.UTF8, leaveOpen: true);
            var target = ValueCodec.ReadString(reader, MaximumPathBytes);
            var sender = ValueCodec.ReadString(reader, MaximumPathBytes);
            var manifest = ValueCodec.ReadString(reader, MaximumManifestBytes);
            check?.Invoke(target, sender, manifest);
            return (target, sender, serializer.Read(reader, manifest));
        }
        catch (Exception e) when (e is not BadFrameException and not OperationCanceledException)
        {
            throw new BadFrameException(e.Message, e);
        }
    }

    // One frame of the connection: reads stop at its end, and Length - Position is what is left of it.
    private sealed class FrameStream(Stream inner, long length, TimeSpan deadline) : Stream
    {
        private readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();
        private long _position;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => length;

        public override long Position
        {
            get => _position;
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var wanted = (int)Math.Min(buffer.Length, length - _position);
            if (wanted == 0)
            {
                return 0;
            }

            if (_clock.Elapsed > deadline)
            {
                throw new TimeoutException($"a frame of {length} bytes took longer than {deadline.TotalSeconds:F0} s");
            }

            var read = inner.Read(buffer[..wanted]);
            if (read == 0)
            {
                throw new EndOfStreamException("connection closed inside a frame");
            }

            _position += read;
            return read;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
