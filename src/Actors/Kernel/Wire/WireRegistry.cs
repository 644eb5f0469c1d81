using System.Runtime.Serialization;

namespace DistributedInference.Actors.Kernel.Wire;

/// <summary>
/// Every message type that may cross nodes, with its manifest, writer and reader, as the protocols registered them
/// (<see cref="WireProtocol.Register"/>). A manifest or type registered twice is refused when the serializer starts.
/// </summary>
public sealed class WireRegistry
{
    private readonly Dictionary<Type, (string Manifest, Action<WireWriter, object> Write)> _writers = [];
    private readonly Dictionary<string, (Type Type, Func<WireReader, object> Read)> _readers = new(StringComparer.Ordinal);

    /// <summary>The registered message types.</summary>
    public IReadOnlyCollection<Type> Types => _writers.Keys;

    /// <summary>Registers <typeparamref name="T"/> under <paramref name="manifest"/>.</summary>
    /// <exception cref="InvalidOperationException">The type or the manifest is registered already.</exception>
    public WireRegistry Add<T>(string manifest, Action<WireWriter, T> write, Func<WireReader, T> read)
        where T : IWireMessage
    {
        if (_writers.ContainsKey(typeof(T)) || _readers.ContainsKey(manifest))
        {
            throw new InvalidOperationException($"wire: {typeof(T).Name} or manifest '{manifest}' is registered twice");
        }

        _writers[typeof(T)] = (manifest, (w, o) => write(w, (T)o));
        _readers[manifest] = (typeof(T), r => read(r));
        return this;
    }

    /// <summary>Registers a message without fields (a query, say) that reads back as <paramref name="instance"/>.</summary>
    public WireRegistry Add<T>(string manifest, T instance)
        where T : IWireMessage =>
        Add<T>(manifest, (_, _) => { }, _ => instance);

    /// <summary>The manifest of <paramref name="type"/>, or null when it is not registered.</summary>
    public string? Manifest(Type type) => _writers.TryGetValue(type, out var entry) ? entry.Manifest : null;

    /// <summary>Whether frames with this manifest may travel on the data plane (its type is an <see cref="IBulkMessage"/>).</summary>
    public bool IsBulk(string manifest) => _readers.TryGetValue(manifest, out var entry) && typeof(IBulkMessage).IsAssignableFrom(entry.Type);

    internal void Write(WireWriter writer, object message)
    {
        if (!_writers.TryGetValue(message.GetType(), out var entry))
        {
            throw new SerializationException($"cannot serialize {message.GetType().Name}: no wire protocol registers it");
        }

        entry.Write(writer, message);
    }

    internal object Read(WireReader reader, string manifest) =>
        _readers.TryGetValue(manifest, out var entry) ? entry.Read(reader) : throw new SerializationException($"unknown manifest '{manifest}'");
}
