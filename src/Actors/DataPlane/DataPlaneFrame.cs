using System.Buffers.Binary;
using System.Runtime.Serialization;
using Akka.Actor;
using DistributedInference.Actors.Serialization;

namespace DistributedInference.Actors.DataPlane;

/// <summary>
/// A data plane frame: its length (int64), then the target's and the sender's serialized actor paths and the
/// message's manifest (strings), then the message as <see cref="DistributedInferenceSerializer"/> writes it.
/// </summary>
internal static class DataPlaneFrame
{
    public const int HeaderSize = sizeof(long);

    /// <summary>Writes one frame into <paramref name="buffer"/> (reset first), length included.</summary>
    public static void Write(MemoryStream buffer, DistributedInferenceSerializer serializer, Outgoing outgoing)
    {
        buffer.SetLength(0);
        buffer.Position = HeaderSize;
        using (var writer = new BinaryWriter(buffer, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            ValueCodec.WriteString(writer, Akka.Serialization.Serialization.SerializedActorPath(outgoing.Target));
            ValueCodec.WriteString(writer, outgoing.Sender is null || outgoing.Sender.IsNobody() ? string.Empty : Akka.Serialization.Serialization.SerializedActorPath(outgoing.Sender));
            ValueCodec.WriteString(writer, serializer.Manifest(outgoing.Message));
            serializer.Write(writer, outgoing.Message);
        }

        BinaryPrimitives.WriteInt64LittleEndian(buffer.GetBuffer(), buffer.Length - HeaderSize);
    }
}

/// <summary>Reads frames off a connection into one reused buffer; a frame over the size limit is refused before reading it.</summary>
internal sealed class DataPlaneFrameReader(Stream stream, long maximumFrameSize)
{
    private readonly byte[] _header = new byte[DataPlaneFrame.HeaderSize];
    private byte[] _buffer = new byte[1 << 16];

    /// <summary>The next frame, or null when the other side closed the connection between frames.</summary>
    public async Task<Frame?> NextAsync(CancellationToken cancellation)
    {
        var read = await stream.ReadAtLeastAsync(_header, _header.Length, throwOnEndOfStream: false, cancellation);
        if (read == 0)
        {
            return null;
        }

        if (read < _header.Length)
        {
            throw new EndOfStreamException("connection closed inside a frame header");
        }

        var length = BinaryPrimitives.ReadInt64LittleEndian(_header);
        if (length <= 0 || length > maximumFrameSize)
        {
            throw new SerializationException($"frame of {length} bytes (at most {maximumFrameSize})");
        }

        if (_buffer.Length < length)
        {
            _buffer = new byte[Math.Max(length, Math.Min(maximumFrameSize, 2L * _buffer.Length))];
        }

        await stream.ReadExactlyAsync(_buffer.AsMemory(0, (int)length), cancellation);
        return new Frame(_buffer, (int)length);
    }

    /// <summary>A frame's bytes, valid until the next read.</summary>
    public sealed class Frame(byte[] buffer, int length)
    {
        public (string Target, string Sender, object Message) Read(DistributedInferenceSerializer serializer)
        {
            using var reader = new BinaryReader(new MemoryStream(buffer, 0, length, writable: false));
            var target = ValueCodec.ReadString(reader);
            var sender = ValueCodec.ReadString(reader);
            var manifest = ValueCodec.ReadString(reader);
            return (target, sender, serializer.Read(reader, manifest));
        }
    }
}
