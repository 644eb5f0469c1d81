using System.Collections;
using System.Text.Json;
using DistributedInference.Actors.Kernel.Wire;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Processes;

/// <summary>
/// How a process group's parts cross processes: values <see cref="ValueCodec"/> knows (null, booleans, numbers,
/// strings, tensors, lists and string-keyed dictionaries of them) in its binary form; anything else as JSON of its
/// declared type. <see cref="To{T}"/> turns what comes back (lists come back as <c>object?[]</c>, numbers as
/// <c>int</c>/<c>long</c>/<c>float</c>/<c>double</c>) into the caller's type.
/// </summary>
public static class ProcessPayload
{
    private const byte Codec = 0;
    private const byte Json = 1;

    /// <summary>The bytes of <paramref name="value"/>; JSON (of <paramref name="declared"/>) when <see cref="ValueCodec"/> cannot write it.</summary>
    /// <exception cref="NotSupportedException">Neither form can write the value.</exception>
    public static byte[] Encode(object? value, Type declared)
    {
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream))
        {
            if (IsCodecValue(value, 0))
            {
                writer.Write(Codec);
                ValueCodec.Write(writer, value);
            }
            else
            {
                writer.Write(Json);
                ValueCodec.WriteString(writer, JsonSerializer.Serialize(value, declared));
            }
        }

        return stream.ToArray();
    }

    /// <summary>The value <see cref="Encode"/> wrote; tensors are new, owned by the caller.</summary>
    public static object? Decode(byte[] bytes, Type declared)
    {
        using var reader = new BinaryReader(new MemoryStream(bytes, writable: false));
        return reader.ReadByte() == Json ? JsonSerializer.Deserialize(ValueCodec.ReadString(reader), declared) : ValueCodec.Read(reader);
    }

    /// <summary><paramref name="value"/> as a <typeparamref name="T"/>: as is, converted (numbers), or element by element (lists, arrays).</summary>
    /// <exception cref="InvalidCastException">The value cannot be a <typeparamref name="T"/>.</exception>
    public static T To<T>(object? value) => (T)To(value, typeof(T))!;

    private static object? To(object? value, Type type)
    {
        if (value is null || type.IsInstanceOfType(value))
        {
            return value;
        }

        if (value is IList items)
        {
            var element = type.IsArray ? type.GetElementType()! : type.IsGenericType && type.GetGenericArguments().Length == 1 ? type.GetGenericArguments()[0] : null;
            if (element is not null)
            {
                var array = Array.CreateInstance(element, items.Count);
                for (var i = 0; i < items.Count; i++)
                {
                    array.SetValue(To(items[i], element), i);
                }

                if (type.IsInstanceOfType(array))
                {
                    return array;
                }

                var list = (IList)Activator.CreateInstance(typeof(List<>).MakeGenericType(element))!;
                foreach (var item in array)
                {
                    list.Add(item);
                }

                return list;
            }
        }

        var target = Nullable.GetUnderlyingType(type) ?? type;
        return value is IConvertible && target.IsPrimitive ? Convert.ChangeType(value, target, System.Globalization.CultureInfo.InvariantCulture) : throw new InvalidCastException($"a gathered {value.GetType().Name} is not a {type.Name}");
    }

    private static bool IsCodecValue(object? value, int depth) => depth <= ValueCodec.MaxDepth && value switch
    {
        null or bool or int or long or float or double or string or Tensor => true,
        IReadOnlyDictionary<string, object> dictionary => dictionary.Values.All(v => IsCodecValue(v, depth + 1)),
        IList list => list.Cast<object?>().All(v => IsCodecValue(v, depth + 1)),
        _ => false,
    };
}
