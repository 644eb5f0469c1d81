using System.Runtime.Serialization;
using Akka.Actor;
using Akka.Serialization;

namespace DistributedInference.Actors.Kernel.Wire;

/// <summary>
/// The binary serializer of every message that may cross nodes (<see cref="IWireMessage"/>, bound in
/// hocon/serialization.conf, identifier <see cref="Id"/>): a registry that knows no feature. Each feature registers its
/// own messages through its <see cref="WireProtocol"/>, listed in <c>distributed-inference.wire.protocols</c>. Payloads
/// (rows, results, activations) go through <see cref="ValueCodec"/>, actor references as their serialized paths.
/// Serializing disposes nothing: the transport (<see cref="Transport.Transport"/>) releases a message's rows once they
/// are written. A malformed frame throws <see cref="SerializationException"/>, which Akka.Remote logs and drops: the
/// receiving node keeps running.
/// </summary>
public sealed class DistributedInferenceSerializer : SerializerWithStringManifest
{
    public const int Id = 1771;

    /// <summary>The configuration key listing the protocols (assembly-qualified type names of <see cref="WireProtocol"/>s).</summary>
    public const string ProtocolsKey = "distributed-inference.wire.protocols";

    private const string SerializedManifest = "serialized";

    public DistributedInferenceSerializer(ExtendedActorSystem system)
        : base(system)
    {
        foreach (var name in system.Settings.Config.GetStringList(ProtocolsKey, []))
        {
            var type = Type.GetType(name, throwOnError: false)
                ?? throw new Akka.Configuration.ConfigurationException($"{ProtocolsKey}: no type {name}");
            if (Activator.CreateInstance(type) is not WireProtocol protocol)
            {
                throw new Akka.Configuration.ConfigurationException($"{ProtocolsKey}: {name} is not a {nameof(WireProtocol)}");
            }

            protocol.Register(Registry);
        }

        Registry.Add<Serialized>(SerializedManifest, (w, m) => { w.String(m.Manifest); w.Bytes(m.Body); }, _ => throw new SerializationException("a serialized message is read by its inner manifest"));
    }

    public override int Identifier => Id;

    /// <summary>Every registered message type, its manifest, writer and reader.</summary>
    public WireRegistry Registry { get; } = new();

    /// <summary>The registered message types.</summary>
    public IReadOnlyCollection<Type> MessageTypes => Registry.Types;

    public override string Manifest(object o) =>
        Registry.Manifest(o.GetType()) ?? throw new SerializationException($"no manifest for {o.GetType().Name}");

    /// <summary>The message as bytes; nothing it carries is disposed (see <see cref="Transport.Transport"/>).</summary>
    public override byte[] ToBinary(object obj)
    {
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream))
        {
            Write(writer, obj);
        }

        return stream.ToArray();
    }

    public override object FromBinary(byte[] bytes, string manifest)
    {
        using var reader = new BinaryReader(new MemoryStream(bytes, writable: false));
        return Read(reader, manifest);
    }

    /// <summary>Writes <paramref name="message"/>'s body (what <see cref="Manifest"/> names) where the writer stands.</summary>
    public void Write(BinaryWriter writer, object message) => Registry.Write(new WireWriter(writer), message);

    /// <summary>
    /// Reads one message from where the reader stands to the end of its stream, which must be exactly the message. A
    /// message serialized ahead by the transport (<see cref="Serialized"/>) reads as the message it holds.
    /// </summary>
    public object Read(BinaryReader reader, string manifest)
    {
        try
        {
            if (manifest == SerializedManifest)
            {
                manifest = ValueCodec.ReadString(reader, 64);
                if (manifest == SerializedManifest)
                {
                    throw new SerializationException("a serialized message holds another one");
                }

                if (reader.ReadInt32() != reader.BaseStream.Length - reader.BaseStream.Position)
                {
                    throw new SerializationException("a serialized message's length does not fit its frame");
                }
            }

            var message = Registry.Read(new WireReader(reader, system), manifest);
            var left = reader.BaseStream.Length - reader.BaseStream.Position;
            if (left != 0)
            {
                throw new SerializationException($"{left} bytes left over after '{manifest}'");
            }

            return message;
        }
        catch (Exception e) when (e is EndOfStreamException or IOException or ArgumentException or FormatException or OverflowException or InvalidCastException)
        {
            throw new SerializationException($"malformed '{manifest}' frame: {e.Message}", e);
        }
    }

    /// <summary>
    /// A message serialized ahead of its send (<see cref="Serialize"/>), so whatever rows it carried could be released at
    /// once: Akka.Remote carries these bytes, and the receiving node reads the message itself.
    /// </summary>
    public sealed record Serialized(string Manifest, byte[] Body) : IWireMessage;

    /// <summary>
    /// <paramref name="message"/> written now (<see cref="Serialized"/>); the caller may release its rows afterwards.
    /// </summary>
    public Serialized Serialize(object message) => new(Manifest(message), ToBinary(message));
}
