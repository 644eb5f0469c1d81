using System.Runtime.Serialization;
using System.Text;
using DistributedInference.Models.Staging;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Kernel.Wire;

/// <summary>
/// The binary form of message payloads that cross nodes: null, booleans, numbers, strings, tensors (dtype, shape,
/// raw bytes), lists, string-keyed dictionaries and staged batches, nested. Reading checks every count and size
/// against what is left of the frame, and rejects unknown tags, dtypes and over-deep nesting with a
/// <see cref="SerializationException"/>. Managed allocations grow with the bytes actually read, never with a claimed
/// count (a list claiming 10^9 entries grows one entry per entry read); so does a tensor's storage (chunks as its
/// bytes arrive, its own storage once a quarter of it is in: never more than five times the bytes received plus
/// <see cref="FirstTensorChunk"/>), released at once if its bytes do not follow.
/// </summary>
public static class ValueCodec
{
    public const int MaxDepth = 32;
    public const int MaxDimensions = 16;

    // Lists and dictionaries start at most this large, strings up to StringChunk bytes are read at once, and both grow
    // as their entries or bytes arrive: a claimed count costs a few hundred bytes at most until what it claims follows.
    private const int InitialCapacity = 16;
    private const int StringChunk = 1024;

    /// <summary>The largest tensor read straight into its own storage, and the first chunk of a larger one, in bytes.</summary>
    public const int FirstTensorChunk = 64 * 1024;

    [ThreadStatic]
    private static long t_tensorBytesLive;

    [ThreadStatic]
    private static long t_tensorBytesPeak;

    /// <summary>
    /// The most tensor storage that reads on this thread held at once since the last <see cref="ResetTensorPeak"/>,
    /// beyond what they held then, in bytes (for tests of the bound; storage handed out counts as held).
    /// </summary>
    public static long TensorBytesPeakOnThisThread => t_tensorBytesPeak;

    /// <summary>Starts a new <see cref="TensorBytesPeakOnThisThread"/> measurement.</summary>
    public static void ResetTensorPeak()
    {
        t_tensorBytesLive = 0;
        t_tensorBytesPeak = 0;
    }

    private static readonly (ScalarType Type, byte Code, int Size)[] DTypes =
    [
        (ScalarType.Float32, 1, 4), (ScalarType.Float64, 2, 8), (ScalarType.Float16, 3, 2), (ScalarType.BFloat16, 4, 2),
        (ScalarType.Int64, 5, 8), (ScalarType.Int32, 6, 4), (ScalarType.Int16, 7, 2), (ScalarType.Int8, 8, 1),
        (ScalarType.Byte, 9, 1), (ScalarType.Bool, 10, 1),
    ];

    private enum Tag : byte
    {
        Null = 0,
        False = 1,
        True = 2,
        Int32 = 3,
        Int64 = 4,
        Float64 = 5,
        String = 6,
        Tensor = 7,
        List = 8,
        Dictionary = 9,
        StagedBatch = 10,
        Float32 = 11,
    }

    public static void Write(BinaryWriter writer, object? value, int depth = 0)
    {
        if (depth > MaxDepth)
        {
            throw new SerializationException($"values nest deeper than {MaxDepth}");
        }

        switch (value)
        {
            case null:
                writer.Write((byte)Tag.Null);
                break;
            case bool flag:
                writer.Write((byte)(flag ? Tag.True : Tag.False));
                break;
            case int number:
                writer.Write((byte)Tag.Int32);
                writer.Write(number);
                break;
            case long number:
                writer.Write((byte)Tag.Int64);
                writer.Write(number);
                break;
            case float number:
                writer.Write((byte)Tag.Float32);
                writer.Write(number);
                break;
            case double number:
                writer.Write((byte)Tag.Float64);
                writer.Write(number);
                break;
            case string text:
                writer.Write((byte)Tag.String);
                WriteString(writer, text);
                break;
            case Tensor tensor:
                writer.Write((byte)Tag.Tensor);
                WriteTensor(writer, tensor);
                break;
            case StagedBatch batch:
                writer.Write((byte)Tag.StagedBatch);
                WriteTensor(writer, batch.Hidden);
                WriteTensor(writer, batch.InputIds);
                Write(writer, batch.AttentionMask, depth + 1);
                break;
            case IReadOnlyDictionary<string, object> dictionary:
                writer.Write((byte)Tag.Dictionary);
                writer.Write(dictionary.Count);
                foreach (var (key, item) in dictionary)
                {
                    WriteString(writer, key);
                    Write(writer, item, depth + 1);
                }

                break;
            case System.Collections.IList list:
                writer.Write((byte)Tag.List);
                writer.Write(list.Count);
                foreach (var item in list)
                {
                    Write(writer, item, depth + 1);
                }

                break;
            default:
                throw new SerializationException($"cannot send a {value.GetType().Name} across nodes");
        }
    }

    public static object? Read(BinaryReader reader, int depth = 0)
    {
        if (depth > MaxDepth)
        {
            throw new SerializationException($"values nest deeper than {MaxDepth}");
        }

        var tag = (Tag)reader.ReadByte();
        switch (tag)
        {
            case Tag.Null:
                return null;
            case Tag.False:
                return false;
            case Tag.True:
                return true;
            case Tag.Int32:
                return reader.ReadInt32();
            case Tag.Int64:
                return reader.ReadInt64();
            case Tag.Float32:
                return reader.ReadSingle();
            case Tag.Float64:
                return reader.ReadDouble();
            case Tag.String:
                return ReadString(reader);
            case Tag.Tensor:
                return ReadTensor(reader);
            case Tag.StagedBatch:
                var parts = new List<object?>(3);
                try
                {
                    parts.Add(ReadTensor(reader));
                    parts.Add(ReadTensor(reader));
                    parts.Add(Read(reader, depth + 1));
                    return new StagedBatch((Tensor)parts[0]!, (Tensor)parts[1]!, parts[2] as Tensor ?? (parts[2] is null ? null : throw new SerializationException("attention mask is not a tensor")));
                }
                catch
                {
                    DisposeAll(parts);
                    throw;
                }
            case Tag.List:
                var count = ReadCount(reader, minimumBytesEach: 1);
                var items = new List<object?>(Math.Min(count, InitialCapacity));
                try
                {
                    for (var i = 0; i < count; i++)
                    {
                        items.Add(Read(reader, depth + 1));
                    }
                }
                catch
                {
                    DisposeAll(items);
                    throw;
                }

                return items.ToArray();
            case Tag.Dictionary:
                var entries = ReadCount(reader, minimumBytesEach: 5);
                var dictionary = new Dictionary<string, object>(Math.Min(entries, InitialCapacity), StringComparer.Ordinal);
                try
                {
                    for (var i = 0; i < entries; i++)
                    {
                        var key = ReadString(reader);
                        dictionary[key] = Read(reader, depth + 1) ?? throw new SerializationException($"dictionary value '{key}' is null");
                    }
                }
                catch
                {
                    DisposeAll(dictionary.Values);
                    throw;
                }

                return (IReadOnlyDictionary<string, object>)dictionary;
            default:
                throw new SerializationException($"unknown value tag {(byte)tag}");
        }
    }

    public static void WriteString(BinaryWriter writer, string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        writer.Write(bytes.Length);
        writer.Write(bytes);
    }

    /// <summary>
    /// Reads a string written by <see cref="WriteString"/>: its bytes are read in chunks, so a claimed length larger
    /// than what follows costs no more than what follows.
    /// </summary>
    /// <param name="maximumBytes">Longer strings are refused before any of them is read.</param>
    /// <exception cref="SerializationException">The length does not fit the frame or exceeds <paramref name="maximumBytes"/>.</exception>
    public static string ReadString(BinaryReader reader, int maximumBytes = int.MaxValue)
    {
        var length = ReadCount(reader, minimumBytesEach: 1);
        if (length > maximumBytes)
        {
            throw new SerializationException($"string of {length} bytes (at most {maximumBytes} here)");
        }

        if (length <= StringChunk)
        {
            var bytes = reader.ReadBytes(length);
            return bytes.Length == length ? Encoding.UTF8.GetString(bytes) : throw new EndOfStreamException("frame ends inside a string");
        }

        using var buffer = new MemoryStream(StringChunk);
        var chunk = new byte[StringChunk];
        for (var left = length; left > 0;)
        {
            var read = reader.Read(chunk, 0, Math.Min(left, chunk.Length));
            if (read == 0)
            {
                throw new EndOfStreamException("frame ends inside a string");
            }

            buffer.Write(chunk, 0, read);
            left -= read;
        }

        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, length);
    }

    private static void WriteTensor(BinaryWriter writer, Tensor tensor)
    {
        var code = DTypes.FirstOrDefault(d => d.Type == tensor.dtype);
        if (code.Code == 0)
        {
            throw new SerializationException($"cannot send a {tensor.dtype} tensor across nodes");
        }

        writer.Write(code.Code);
        writer.Write((byte)tensor.dim());
        foreach (var size in tensor.shape)
        {
            writer.Write(size);
        }

        // Each step makes a new handle (on the same storage when nothing needs copying): every one is released here.
        using var detached = tensor.detach();
        using var cpu = detached.cpu();
        using var contiguous = cpu.contiguous();
        if (contiguous.NumberOfElements > 0)
        {
            writer.Write(contiguous.bytes);
        }
    }

    private static Tensor ReadTensor(BinaryReader reader)
    {
        var code = reader.ReadByte();
        var dtype = DTypes.FirstOrDefault(d => d.Code == code);
        if (dtype.Code == 0)
        {
            throw new SerializationException($"unknown tensor dtype code {code}");
        }

        var dimensions = reader.ReadByte();
        if (dimensions > MaxDimensions)
        {
            throw new SerializationException($"tensor with {dimensions} dimensions (at most {MaxDimensions})");
        }

        var shape = new long[dimensions];
        long elements = 1;
        for (var i = 0; i < dimensions; i++)
        {
            shape[i] = reader.ReadInt64();
            if (shape[i] < 0)
            {
                throw new SerializationException($"tensor dimension {i} is negative ({shape[i]})");
            }

            elements = shape[i] == 0 || elements == 0 ? 0 : elements <= long.MaxValue / shape[i] ? elements * shape[i] : -1;
            if (elements < 0)
            {
                throw new SerializationException("tensor shape overflows");
            }
        }

        var bytes = elements <= long.MaxValue / dtype.Size ? elements * dtype.Size : -1;
        var left = reader.BaseStream.Length - reader.BaseStream.Position;
        if (bytes < 0 || bytes > left)
        {
            throw new SerializationException($"tensor [{string.Join(", ", shape)}] needs {bytes} bytes but the frame has {left} left");
        }

        if (bytes == 0)
        {
            return empty(shape, dtype.Type);
        }

        // Storage grows with the bytes that arrive, never from the claimed shape: a small tensor (at most
        // FirstTensorChunk) is read straight into its storage; a larger one first into chunks, each as large as all
        // before it, until a quarter of it has arrived; only then is its own storage reserved, the chunks copied in
        // (a quarter of its bytes) and the rest read straight into it. A frame that claims a huge tensor and stops
        // costs about what it sent: at most five times the bytes received plus FirstTensorChunk, at any moment.
        var chunks = new List<Tensor>();
        Tensor? storage = null;
        try
        {
            long received = 0;
            while (bytes > FirstTensorChunk && received * 4 < bytes)
            {
                var chunk = Reserve(Math.Min(bytes - received, Math.Max(FirstTensorChunk, received)), ScalarType.Byte, 1);
                chunks.Add(chunk);
                ReadInto(reader, chunk.bytes, shape);
                received += chunk.NumberOfElements;
            }

            storage = Reserve(elements, dtype.Type, dtype.Size);
            var span = storage.bytes;
            long offset = 0;
            foreach (var chunk in chunks)
            {
                chunk.bytes.CopyTo(span[(int)offset..]);
                offset += chunk.NumberOfElements;
            }

            ReadInto(reader, span[(int)offset..], shape);
            var tensor = storage.view(shape);
            Release(storage);
            return tensor;
        }
        catch
        {
            if (storage is not null)
            {
                Release(storage);
            }

            throw;
        }
        finally
        {
            foreach (var chunk in chunks)
            {
                Release(chunk);
            }
        }
    }

    private static void ReadInto(BinaryReader reader, Span<byte> target, long[] shape)
    {
        while (target.Length > 0)
        {
            var read = reader.BaseStream.Read(target);
            if (read == 0)
            {
                throw new EndOfStreamException($"the frame ended inside tensor [{string.Join(", ", shape)}]");
            }

            target = target[read..];
        }
    }

    private static Tensor Reserve(long elements, ScalarType type, int size)
    {
        t_tensorBytesLive += elements * size;
        t_tensorBytesPeak = Math.Max(t_tensorBytesPeak, t_tensorBytesLive);
        return empty([elements], type);
    }

    private static void Release(Tensor storage)
    {
        t_tensorBytesLive -= storage.NumberOfElements * storage.ElementSize;
        storage.Dispose();
    }

    // A value read before a later part of its frame failed: its tensors are released now, not at finalization.
    private static void DisposeAll(IEnumerable<object?> values)
    {
        foreach (var value in values)
        {
            Kernel.Rows.RowOwnership.Dispose(value);
        }
    }

    private static int ReadCount(BinaryReader reader, int minimumBytesEach)
    {
        var count = reader.ReadInt32();
        var left = reader.BaseStream.Length - reader.BaseStream.Position;
        if (count < 0 || (long)count * minimumBytesEach > left)
        {
            throw new SerializationException($"count {count} does not fit the {left} bytes left in the frame");
        }

        return count;
    }
}
