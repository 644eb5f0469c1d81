using System.Runtime.Serialization;
using Akka.Actor;
using DistributedInference.Actors.Kernel.Rows;

namespace DistributedInference.Actors.Kernel.Wire;

/// <summary>
/// Reads back what <see cref="WireWriter"/> wrote, checking every count and size against what is left of the frame
/// before anything is allocated; anything malformed throws <see cref="SerializationException"/> (or an
/// <see cref="IOException"/> the serializer turns into one).
/// </summary>
public sealed class WireReader(BinaryReader reader, ExtendedActorSystem system)
{
    public int Int() => reader.ReadInt32();

    public long Long() => reader.ReadInt64();

    public bool Bool() => reader.ReadBoolean();

    public double Double() => reader.ReadDouble();

    public string String() => ValueCodec.ReadString(reader);

    public string? OptionalString() => ValueCodec.Read(reader) switch
    {
        null => null,
        string text => text,
        var other => throw new SerializationException($"expected a string or null, read a {other.GetType().Name}"),
    };

    public TimeSpan Time() => TimeSpan.FromTicks(reader.ReadInt64());

    public IActorRef Ref() => system.Provider.ResolveActorRef(String());

    /// <summary>Rows the receiver owns; null is refused.</summary>
    public RowBatch Rows() => OptionalRows() ?? throw new SerializationException("a required payload is null");

    /// <summary>Rows the receiver owns, or null; a value that is not rows (a bare number, say) is refused and released.</summary>
    public RowBatch? OptionalRows()
    {
        var value = ValueCodec.Read(reader);
        try
        {
            return RowBatch.FromNullable(value);
        }
        catch (ArgumentException e)
        {
            RowOwnership.Dispose(value);
            throw new SerializationException(e.Message, e);
        }
    }

    /// <summary>Any value <see cref="ValueCodec"/> carries.</summary>
    public object? Value() => ValueCodec.Read(reader);

    /// <summary>A byte array whose length is checked against the frame before it is allocated.</summary>
    public byte[] Bytes() => reader.ReadBytes(Count());

    /// <summary>An enum value, refused when it names no member.</summary>
    public TEnum Enum<TEnum>()
        where TEnum : struct, Enum
    {
        var value = (TEnum)System.Enum.ToObject(typeof(TEnum), reader.ReadInt32());
        return System.Enum.IsDefined(value) ? value : throw new SerializationException($"unknown {typeof(TEnum).Name} {value}");
    }

    /// <summary>A counted list, grown as its items are read: the count alone reserves nothing.</summary>
    public List<T> Many<T>(Func<WireReader, T> read)
    {
        var count = Count();
        var items = new List<T>(Math.Min(count, 64));
        for (var i = 0; i < count; i++)
        {
            items.Add(read(this));
        }

        return items;
    }

    private int Count()
    {
        var count = reader.ReadInt32();
        if (count < 0 || count > reader.BaseStream.Length - reader.BaseStream.Position)
        {
            throw new SerializationException($"count {count} does not fit the frame");
        }

        return count;
    }
}
