using Akka.Actor;
using DistributedInference.Actors.Kernel.Rows;

namespace DistributedInference.Actors.Kernel.Wire;

/// <summary>
/// Writes the fields of one message, in order, for <see cref="WireReader"/> to read back: numbers little-endian,
/// strings as UTF-8 with their length, actor references as their serialized paths, rows and other values through
/// <see cref="ValueCodec"/>. Writing never disposes anything: the transport releases a message's rows once it is written.
/// </summary>
public sealed class WireWriter(BinaryWriter writer)
{
    public void Int(int value) => writer.Write(value);

    public void Long(long value) => writer.Write(value);

    public void Bool(bool value) => writer.Write(value);

    public void Double(double value) => writer.Write(value);

    public void String(string value) => ValueCodec.WriteString(writer, value);

    /// <summary>A string or null.</summary>
    public void OptionalString(string? value) => ValueCodec.Write(writer, value);

    /// <summary>A duration, as ticks (100 ns).</summary>
    public void Time(TimeSpan value) => writer.Write(value.Ticks);

    public void Ref(IActorRef actor) => String(Akka.Serialization.Serialization.SerializedActorPath(actor));

    /// <summary>Rows (or null); the payload is not disposed.</summary>
    public void Rows(RowBatch? rows) => ValueCodec.Write(writer, rows?.Value);

    /// <summary>Any value <see cref="ValueCodec"/> carries.</summary>
    public void Value(object? value) => ValueCodec.Write(writer, value);

    public void Bytes(byte[] bytes)
    {
        writer.Write(bytes.Length);
        writer.Write(bytes);
    }

    /// <summary>An enum value as its number.</summary>
    public void Enum<TEnum>(TEnum value)
        where TEnum : struct, Enum => writer.Write(Convert.ToInt32(value, System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>A count, then each item.</summary>
    public void Many<T>(IReadOnlyCollection<T> items, Action<WireWriter, T> write)
    {
        writer.Write(items.Count);
        foreach (var item in items)
        {
            write(this, item);
        }
    }
}
