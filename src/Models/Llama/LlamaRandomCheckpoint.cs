using System.Text.Json;
using System.Text.Json.Nodes;
using DistributedInference.Models.Loading;
using static TorchSharp.torch;

namespace DistributedInference.Models.Llama;

/// <summary>What <see cref="LlamaRandomCheckpoint.Write"/> wrote.</summary>
/// <param name="Files">The weight files, in order (one <c>model.safetensors</c>, or <c>model-0000k-of-0000n.safetensors</c>).</param>
/// <param name="Tensors">Tensors written.</param>
/// <param name="TotalBytes">Bytes of tensor data (the index's <c>metadata.total_size</c>).</param>
public sealed record RandomCheckpointSummary(IReadOnlyList<string> Files, int Tensors, long TotalBytes);

/// <summary>
/// Writes a Hugging Face folder of seeded random weights for a Llama-family config: <c>config.json</c>, the weights in
/// <c>model.safetensors</c> or in shards listed by <c>model.safetensors.index.json</c> (with <c>total_size</c>), the
/// way <c>save_pretrained</c> lays them out. Tensors are made and written one at a time (never the whole model in
/// memory) with <see cref="LlamaWeights.InitializeRandom"/>'s per-tensor rule, so the folder loaded in the dtype it was
/// written in computes exactly what the built-in configuration computes with the same seed in that dtype.
/// </summary>
public static class LlamaRandomCheckpoint
{
    private const string IndexFile = "model.safetensors.index.json";

    /// <summary>
    /// The checkpoint's tensors, in the model's order, with their shapes: read from a model built on the <c>meta</c>
    /// device, so nothing is allocated.
    /// </summary>
    public static IReadOnlyList<(string Name, long[] Shape)> TensorsOf(LlamaConfig config)
    {
        using var model = new LlamaForCausalLM(config, new Device(DeviceType.META), ScalarType.Float32);
        return model.named_parameters().Select(p => (p.name, p.parameter.shape)).ToList();
    }

    /// <param name="config">The model's configuration.</param>
    /// <param name="configJson">The config.json to write (for a folder's config, its own JSON; else
    /// <see cref="LlamaConfigJson.ToJson"/>); its <c>torch_dtype</c> is set to <paramref name="dtype"/>.</param>
    /// <param name="folder">Where to write: a new or empty folder.</param>
    /// <param name="dtype">The stored dtype (float32, float16 or bfloat16).</param>
    /// <param name="shards">Weight files, at least 1; tensors are cut into contiguous groups of nearly equal bytes.</param>
    /// <param name="seed">Seed of the random values (the built-in's <c>--seed</c>).</param>
    /// <exception cref="InvalidInputException">A folder that is not empty, a dtype other than the three, or more shards than tensors (one line).</exception>
    public static RandomCheckpointSummary Write(LlamaConfig config, JsonObject configJson, string folder, ScalarType dtype, int shards, long seed)
    {
        if (dtype is not (ScalarType.Float32 or ScalarType.Float16 or ScalarType.BFloat16))
        {
            throw new InvalidInputException($"--dtype {dtype}: random checkpoints are float32, float16 or bfloat16");
        }

        var tensors = TensorsOf(config);
        if (shards < 1 || shards > tensors.Count)
        {
            throw new InvalidInputException($"--shards must be from 1 to {tensors.Count} (the model's tensors), got {shards}");
        }

        if (Directory.Exists(folder) && Directory.EnumerateFileSystemEntries(folder).Any())
        {
            throw new InvalidInputException($"{folder}: exists and is not empty (give a new folder)");
        }

        Directory.CreateDirectory(folder);
        using var probe = empty([0], dtype);
        var elementSize = probe.ElementSize;
        var groups = Cut(tensors, t => t.Shape.Aggregate(1L, (a, d) => a * d) * elementSize, shards);
        var files = shards == 1
            ? ["model.safetensors"]
            : Enumerable.Range(1, shards).Select(k => $"model-{k:D5}-of-{shards:D5}.safetensors").ToList();
        var metadata = new Dictionary<string, string> { ["format"] = "pt" };
        long total = 0;
        for (var k = 0; k < shards; k++)
        {
            total += SafeTensorsFile.WriteEach(
                Path.Combine(folder, files[k]),
                groups[k].Select(t => (t.Name, dtype, t.Shape)).ToList(),
                (name, tensor) => LlamaWeights.InitializeRandom([(name, tensor)], seed),
                metadata);
        }

        var json = (JsonObject)configJson.DeepClone();
        json["torch_dtype"] = dtype switch { ScalarType.BFloat16 => "bfloat16", ScalarType.Float16 => "float16", _ => "float32" };
        json.Remove("dtype");
        File.WriteAllText(Path.Combine(folder, "config.json"), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        if (shards > 1)
        {
            var map = new JsonObject();
            for (var k = 0; k < shards; k++)
            {
                foreach (var (name, _) in groups[k])
                {
                    map[name] = files[k];
                }
            }

            var index = new JsonObject { ["metadata"] = new JsonObject { ["total_size"] = total }, ["weight_map"] = map };
            File.WriteAllText(Path.Combine(folder, IndexFile), index.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        }

        return new RandomCheckpointSummary(files, tensors.Count, total);
    }

    // Contiguous groups, each closed once the bytes so far reach its share of the total; never an empty group.
    private static List<List<T>> Cut<T>(IReadOnlyList<T> items, Func<T, long> size, int groups)
    {
        var total = items.Sum(size);
        var result = new List<List<T>> { new() };
        long sofar = 0;
        for (var i = 0; i < items.Count; i++)
        {
            var left = items.Count - i;
            var groupsLeft = groups - result.Count;
            if (result[^1].Count > 0 && groupsLeft > 0 && (left <= groupsLeft || sofar >= total * result.Count / groups))
            {
                result.Add([]);
            }

            result[^1].Add(items[i]);
            sofar += size(items[i]);
        }

        return result;
    }
}
