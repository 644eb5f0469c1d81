using System.Text.Json;
using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace DistributedInference.Models.Loading;

/// <summary>
/// A Hugging Face model directory: <c>config.json</c> plus weights in <c>model.safetensors</c>, or sharded
/// across files listed by <c>model.safetensors.index.json</c> (diffusers' components: <c>diffusion_pytorch_model.*</c>).
/// </summary>
public sealed class HuggingFaceCheckpoint
{
    /// <summary>The weights' file name stem of transformers' folders (diffusers' components use <c>diffusion_pytorch_model</c>).</summary>
    public const string TransformersWeights = "model";

    private readonly Dictionary<string, SafeTensorsFile> _fileOfTensor;

    private HuggingFaceCheckpoint(string directory, Dictionary<string, SafeTensorsFile> fileOfTensor)
    {
        Directory = directory;
        _fileOfTensor = fileOfTensor;
    }

    public string Directory { get; }

    public string ConfigPath => System.IO.Path.Combine(Directory, "config.json");

    public IReadOnlyCollection<string> Names => _fileOfTensor.Keys;

    /// <param name="directory">The model folder.</param>
    /// <param name="weights">The weight files' stem: <c>{weights}.safetensors</c> or <c>{weights}.safetensors.index.json</c>.</param>
    /// <exception cref="InvalidInputException">No folder, no config.json, no weights, or an unusable index (one line).</exception>
    public static HuggingFaceCheckpoint Open(string directory, string weights = TransformersWeights)
    {
        var singleFile = $"{weights}.safetensors";
        var indexFile = $"{weights}.safetensors.index.json";
        if (!System.IO.Directory.Exists(directory))
        {
            throw new InvalidInputException($"{directory}: no such model folder");
        }

        if (!File.Exists(System.IO.Path.Combine(directory, "config.json")))
        {
            throw new InvalidInputException($"{directory}: no config.json (expected a Hugging Face model folder)");
        }

        var single = System.IO.Path.Combine(directory, singleFile);
        var index = System.IO.Path.Combine(directory, indexFile);
        if (File.Exists(single))
        {
            var file = SafeTensorsFile.Open(single);
            return new HuggingFaceCheckpoint(directory, file.Names.ToDictionary(n => n, _ => file, StringComparer.Ordinal));
        }

        if (File.Exists(index))
        {
            return new HuggingFaceCheckpoint(directory, OpenShards(directory, index));
        }

        var bin = weights == TransformersWeights ? "pytorch_model.bin" : $"{weights}.bin";
        var hint = File.Exists(System.IO.Path.Combine(directory, bin))
            ? $" ({bin} found: only safetensors weights are read; convert them with save_pretrained(safe_serialization=True))"
            : string.Empty;
        throw new InvalidInputException($"{directory}: no {singleFile} or {indexFile}{hint}");
    }

    public bool Contains(string name) => _fileOfTensor.ContainsKey(name);

    public long[] ShapeOf(string name) => _fileOfTensor[name].ShapeOf(name);

    /// <summary>Reads one tensor into <paramref name="destination"/>, without a temporary copy when it is a CPU tensor of the stored dtype.</summary>
    /// <exception cref="InvalidInputException">Another shape.</exception>
    public void ReadInto(string name, Tensor destination) => _fileOfTensor[name].ReadInto(name, destination);

    /// <summary>Reads one tensor onto the CPU.</summary>
    public Tensor Read(string name) => _fileOfTensor[name].Read(name);

    private static Dictionary<string, SafeTensorsFile> OpenShards(string directory, string index)
    {
        JsonObject map;
        try
        {
            map = JsonNode.Parse(File.ReadAllText(index))?["weight_map"] as JsonObject
                ?? throw new InvalidInputException($"{index}: no weight_map");
        }
        catch (JsonException e)
        {
            throw new InvalidInputException($"{index}: not valid JSON ({e.Message})", e);
        }

        var shards = new Dictionary<string, SafeTensorsFile>(StringComparer.Ordinal);
        var result = new Dictionary<string, SafeTensorsFile>(StringComparer.Ordinal);
        foreach (var (name, node) in map)
        {
            var shardName = node?.GetValue<string>() ?? throw new InvalidInputException($"{index}: tensor '{name}' has no file");
            if (shardName.Contains('/') || shardName.Contains('\\'))
            {
                throw new InvalidInputException($"{index}: shard '{shardName}' must be a file in the model folder");
            }

            if (!shards.TryGetValue(shardName, out var shard))
            {
                if (!File.Exists(System.IO.Path.Combine(directory, shardName)))
                {
                    throw new InvalidInputException($"{index}: shard {shardName} (holding '{name}') is missing from the folder");
                }

                shard = SafeTensorsFile.Open(System.IO.Path.Combine(directory, shardName));
                shards[shardName] = shard;
            }

            if (!shard.Contains(name))
            {
                throw new InvalidInputException($"{index}: '{name}' is listed in {shardName}, which does not hold it");
            }

            result[name] = shard;
        }

        return result;
    }
}
