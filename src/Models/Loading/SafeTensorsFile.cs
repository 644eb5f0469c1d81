using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;

namespace DistributedInference.Models.Loading;

/// <summary>
/// Reads and writes the safetensors format (8-byte header length, JSON header, raw little-endian bytes). The
/// header is validated before any tensor is allocated: known dtypes, non-negative shapes, byte ranges that match
/// the shape and tile the data section exactly (no overlap, no hole, nothing after the last tensor: the format's own
/// rule, so a corrupt header is an error rather than wrong numbers). Tensors are read one at a time, so a large checkpoint is never held twice.
/// </summary>
public sealed class SafeTensorsFile
{
    private const long MaxHeaderBytes = 100L * 1024 * 1024;

    private static readonly Dictionary<string, (torch.ScalarType Type, int Size)> DTypes = new(StringComparer.Ordinal)
    {
        ["F64"] = (torch.ScalarType.Float64, 8),
        ["F32"] = (torch.ScalarType.Float32, 4),
        ["F16"] = (torch.ScalarType.Float16, 2),
        ["BF16"] = (torch.ScalarType.BFloat16, 2),
        ["I64"] = (torch.ScalarType.Int64, 8),
        ["I32"] = (torch.ScalarType.Int32, 4),
        ["I16"] = (torch.ScalarType.Int16, 2),
        ["I8"] = (torch.ScalarType.Int8, 1),
        ["U8"] = (torch.ScalarType.Byte, 1),
        ["BOOL"] = (torch.ScalarType.Bool, 1),
    };

    private readonly Dictionary<string, Entry> _entries;
    private readonly long _dataStart;

    private SafeTensorsFile(string path, Dictionary<string, Entry> entries, long dataStart)
    {
        Path = path;
        _entries = entries;
        _dataStart = dataStart;
    }

    public string Path { get; }

    public IReadOnlyCollection<string> Names => _entries.Keys;

    public bool Contains(string name) => _entries.ContainsKey(name);

    public long[] ShapeOf(string name) => Find(name).Shape;

    public torch.ScalarType TypeOf(string name) => Find(name).Type;

    /// <summary>Opens a file and validates its header; tensors are read later by <see cref="Read"/>.</summary>
    public static SafeTensorsFile Open(string path)
    {
        if (!File.Exists(path))
        {
            throw new InvalidInputException($"{path}: no such file");
        }

        using var stream = File.OpenRead(path);
        var length = stream.Length;
        Span<byte> prefix = stackalloc byte[8];
        if (length < 8 || stream.Read(prefix) != 8)
        {
            throw Corrupt(path, "shorter than the 8-byte header length");
        }

        var headerLength = BitConverter.ToInt64(prefix);
        if (headerLength <= 0 || headerLength > MaxHeaderBytes || headerLength > length - 8)
        {
            throw Corrupt(path, $"header length {headerLength} does not fit a file of {length} bytes");
        }

        var header = new byte[headerLength];
        stream.ReadExactly(header);
        var dataStart = 8 + headerLength;
        return new SafeTensorsFile(path, ParseHeader(path, header, length - dataStart), dataStart);
    }

    /// <summary>Reads every tensor of a file onto the CPU.</summary>
    public static Dictionary<string, torch.Tensor> ReadAll(string path)
    {
        var file = Open(path);
        var result = new Dictionary<string, torch.Tensor>(StringComparer.Ordinal);
        foreach (var name in file.Names)
        {
            result[name] = file.Read(name);
        }

        return result;
    }

    /// <summary>Reads one tensor onto the CPU, in the dtype it was stored in.</summary>
    public torch.Tensor Read(string name)
    {
        var entry = Find(name);
        var tensor = torch.empty(entry.Shape, entry.Type);
        try
        {
            using var stream = File.OpenRead(Path);
            stream.Seek(_dataStart + entry.Begin, SeekOrigin.Begin);
            if (entry.End > entry.Begin)
            {
                stream.ReadExactly(tensor.bytes);
            }

            return tensor;
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Reads one tensor into <paramref name="destination"/> (same shape): straight from the file into its memory when
    /// it is a contiguous CPU tensor of the stored dtype (no temporary copy); else through one CPU tensor of the stored
    /// dtype, converted and moved by <c>copy_</c>. A floating-point destination (a weight) takes only a floating-point
    /// tensor: integer or boolean values stored for a weight mean a corrupt checkpoint, never a conversion.
    /// </summary>
    /// <exception cref="InvalidInputException">No such tensor, another shape, or integer/boolean values for a
    /// floating-point destination (one line).</exception>
    public void ReadInto(string name, torch.Tensor destination)
    {
        var entry = Find(name);
        if (!entry.Shape.SequenceEqual(destination.shape))
        {
            throw new InvalidInputException($"{Path}: '{name}' is [{string.Join(", ", entry.Shape)}], not [{string.Join(", ", destination.shape)}]");
        }

        if (destination.is_floating_point() && entry.Type is not (torch.ScalarType.Float64 or torch.ScalarType.Float32 or torch.ScalarType.Float16 or torch.ScalarType.BFloat16))
        {
            var code = DTypes.First(d => d.Value.Type == entry.Type).Key;
            throw new InvalidInputException($"{Path}: '{name}' is stored as {code}, but it is a floating-point weight (F32, F16, BF16 or F64): a corrupt checkpoint");
        }

        if (destination.dtype != entry.Type || destination.device_type != DeviceType.CPU || !destination.is_contiguous())
        {
            using var value = Read(name);
            using var noGrad = torch.no_grad();
            destination.copy_(value);
            return;
        }

        using var stream = File.OpenRead(Path);
        stream.Seek(_dataStart + entry.Begin, SeekOrigin.Begin);
        if (entry.End > entry.Begin)
        {
            stream.ReadExactly(destination.bytes);
        }
    }

    /// <summary>
    /// Writes tensors (any device, any layout) to <paramref name="path"/> through a temporary file beside it, so a
    /// failure never leaves a half-written file behind.
    /// </summary>
    public static void Write(string path, IReadOnlyDictionary<string, torch.Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var header = new JsonObject();
        if (metadata is { Count: > 0 })
        {
            var meta = new JsonObject();
            foreach (var (key, value) in metadata)
            {
                meta[key] = value;
            }

            header["__metadata__"] = meta;
        }

        var ordered = tensors.OrderBy(pair => pair.Key, StringComparer.Ordinal).ToList();
        long offset = 0;
        foreach (var (name, tensor) in ordered)
        {
            var code = DTypes.FirstOrDefault(d => d.Value.Type == tensor.dtype).Key
                ?? throw new ArgumentException($"tensor '{name}' has dtype {tensor.dtype}, which safetensors cannot store");
            var bytes = tensor.NumberOfElements * tensor.ElementSize;
            header[name] = new JsonObject
            {
                ["dtype"] = code,
                ["shape"] = new JsonArray(tensor.shape.Select(d => (JsonNode)d).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + bytes),
            };
            offset += bytes;
        }

        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        var padded = (json.Length + 7) / 8 * 8;
        AtomicFile.Write(path, stream =>
        {
            stream.Write(BitConverter.GetBytes((long)padded));
            stream.Write(json);
            stream.Write(Enumerable.Repeat((byte)' ', padded - json.Length).ToArray());
            foreach (var (_, tensor) in ordered)
            {
                using var cpu = tensor.detach().cpu().contiguous();
                if (cpu.NumberOfElements > 0)
                {
                    stream.Write(cpu.bytes);
                }
            }
        });
    }

    /// <summary>
    /// Writes a file tensor by tensor, for files larger than memory: the header is made from the names, dtypes and
    /// shapes; then each tensor is allocated on the CPU, filled by <paramref name="fill"/>, written and freed before
    /// the next. Written through a temporary file beside <paramref name="path"/>, like <see cref="Write"/>.
    /// </summary>
    /// <param name="path">The file to write.</param>
    /// <param name="tensors">Names, dtypes and shapes, in the order the data is laid out.</param>
    /// <param name="fill">Fills one tensor (uninitialised, CPU, contiguous) given its name.</param>
    /// <param name="metadata">The header's <c>__metadata__</c>, if any.</param>
    /// <returns>Bytes of tensor data written.</returns>
    /// <exception cref="ArgumentException">A dtype safetensors cannot store.</exception>
    public static long WriteEach(
        string path,
        IReadOnlyList<(string Name, torch.ScalarType Type, long[] Shape)> tensors,
        Action<string, torch.Tensor> fill,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        var header = new JsonObject();
        if (metadata is { Count: > 0 })
        {
            var meta = new JsonObject();
            foreach (var (key, value) in metadata)
            {
                meta[key] = value;
            }

            header["__metadata__"] = meta;
        }

        long offset = 0;
        foreach (var (name, type, shape) in tensors)
        {
            var (code, size) = DTypes.Where(d => d.Value.Type == type).Select(d => (d.Key, d.Value.Size)).FirstOrDefault();
            if (code is null)
            {
                throw new ArgumentException($"tensor '{name}' has dtype {type}, which safetensors cannot store");
            }

            var bytes = shape.Aggregate(1L, (a, d) => checked(a * d)) * size;
            header[name] = new JsonObject
            {
                ["dtype"] = code,
                ["shape"] = new JsonArray(shape.Select(d => (JsonNode)d).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + bytes),
            };
            offset += bytes;
        }

        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        var padded = (json.Length + 7) / 8 * 8;
        AtomicFile.Write(path, stream =>
        {
            stream.Write(BitConverter.GetBytes((long)padded));
            stream.Write(json);
            stream.Write(Enumerable.Repeat((byte)' ', padded - json.Length).ToArray());
            foreach (var (name, type, shape) in tensors)
            {
                using var tensor = torch.empty(shape, type);
                fill(name, tensor);
                if (tensor.NumberOfElements > 0)
                {
                    stream.Write(tensor.bytes);
                }
            }
        });
        return offset;
    }

    private Entry Find(string name) =>
        _entries.TryGetValue(name, out var entry) ? entry : throw new InvalidInputException($"{Path}: no tensor named '{name}'");

    private static Dictionary<string, Entry> ParseHeader(string path, byte[] header, long dataLength)
    {
        JsonObject root;
        try
        {
            root = JsonNode.Parse(header) as JsonObject ?? throw Corrupt(path, "header is not a JSON object");
        }
        catch (JsonException e)
        {
            throw Corrupt(path, $"header is not valid JSON ({e.Message})");
        }

        var entries = new Dictionary<string, Entry>(StringComparer.Ordinal);
        foreach (var (name, node) in root)
        {
            if (name == "__metadata__")
            {
                continue;
            }

            entries[name] = ParseEntry(path, name, node, dataLength);
        }

        CheckTiling(path, entries, dataLength);
        return entries;
    }

    // Sorted by offset, each tensor starts where the one before ends, the first at 0, the last at the section's end.
    private static void CheckTiling(string path, Dictionary<string, Entry> entries, long dataLength)
    {
        long covered = 0;
        string? previous = null;
        foreach (var (name, entry) in entries.OrderBy(e => e.Value.Begin).ThenBy(e => e.Value.End))
        {
            if (entry.Begin < covered)
            {
                throw Corrupt(path, $"tensor '{name}' bytes [{entry.Begin}, {entry.End}) overlap tensor '{previous}' (which ends at {covered})");
            }

            if (entry.Begin > covered)
            {
                throw Corrupt(path, $"bytes [{covered}, {entry.Begin}) of the data section belong to no tensor (a hole before '{name}')");
            }

            covered = entry.End;
            previous = name;
        }

        if (covered != dataLength)
        {
            throw Corrupt(path, $"bytes [{covered}, {dataLength}) at the end of the data section belong to no tensor");
        }
    }

    private static Entry ParseEntry(string path, string name, JsonNode? node, long dataLength)
    {
        try
        {
            var code = node?["dtype"]?.GetValue<string>() ?? throw Corrupt(path, $"tensor '{name}' has no dtype");
            if (!DTypes.TryGetValue(code, out var dtype))
            {
                throw Corrupt(path, $"tensor '{name}' has unsupported dtype {code}");
            }

            var shape = (node["shape"] as JsonArray ?? throw Corrupt(path, $"tensor '{name}' has no shape"))
                .Select(d => d!.GetValue<long>()).ToArray();
            var offsets = node["data_offsets"] as JsonArray ?? throw Corrupt(path, $"tensor '{name}' has no data_offsets");
            if (offsets.Count != 2)
            {
                throw Corrupt(path, $"tensor '{name}' data_offsets must hold two numbers");
            }

            var begin = offsets[0]!.GetValue<long>();
            var end = offsets[1]!.GetValue<long>();
            if (shape.Any(d => d < 0))
            {
                throw Corrupt(path, $"tensor '{name}' has a negative dimension");
            }

            var elements = shape.Aggregate(1L, (a, d) => checked(a * d));
            if (begin < 0 || end < begin || end > dataLength)
            {
                throw Corrupt(path, $"tensor '{name}' bytes [{begin}, {end}) lie outside the {dataLength}-byte data section");
            }

            if (checked(elements * dtype.Size) != end - begin)
            {
                throw Corrupt(path, $"tensor '{name}' holds {end - begin} bytes but shape [{string.Join(", ", shape)}] of {code} needs {elements * dtype.Size}");
            }

            return new Entry(dtype.Type, shape, begin, end);
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or OverflowException)
        {
            throw Corrupt(path, $"tensor '{name}' has a malformed header entry ({e.Message})");
        }
    }

    private static InvalidInputException Corrupt(string path, string why) => new($"{path}: not a valid safetensors file: {why}");

    private sealed record Entry(torch.ScalarType Type, long[] Shape, long Begin, long End);
}
