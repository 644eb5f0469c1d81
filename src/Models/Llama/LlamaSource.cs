using DistributedInference.Models.Generation;
using DistributedInference.Models.Loading;
using static TorchSharp.torch;

namespace DistributedInference.Models.Llama;

/// <summary>
/// Where a Llama-family model comes from: a Hugging Face folder (<c>config.json</c>, optional
/// <c>generation_config.json</c>, <c>model.safetensors</c> or shards listed by <c>model.safetensors.index.json</c>),
/// or a built-in configuration (<see cref="LlamaConfig.BuiltIn"/>) initialised randomly from a seed.
/// </summary>
public sealed class LlamaSource
{
    private readonly HuggingFaceCheckpoint? _checkpoint;

    private LlamaSource(string name, LlamaConfig config, HuggingFaceCheckpoint? checkpoint, GenerationConfig? generation, long seed)
    {
        Name = name;
        Config = config;
        _checkpoint = checkpoint;
        Seed = seed;
        EndOfSequenceIds = (generation?.EosTokenIds ?? config.EosTokenIds).Where(id => id < config.VocabSize).Distinct().ToList();
        DeclaredPadTokenId = generation?.PadTokenId ?? config.PadTokenId;
        PadTokenId = DeclaredPadTokenId ?? (EndOfSequenceIds.Count > 0 ? EndOfSequenceIds[0] : 0);
    }

    /// <summary>The folder path or the built-in name.</summary>
    public string Name { get; }

    /// <summary>The model's configuration.</summary>
    public LlamaConfig Config { get; }

    /// <summary>Seed of the random weights of a built-in configuration (unused for folders).</summary>
    public long Seed { get; }

    /// <summary>True for a built-in configuration with random weights.</summary>
    public bool IsBuiltIn => _checkpoint is null;

    /// <summary>Ids that end generation: <c>generation_config.json</c>'s when present, else config.json's.</summary>
    public IReadOnlyList<long> EndOfSequenceIds { get; }

    /// <summary>The id that pads finished rows: pad_token_id, else the first end-of-sequence id, else 0.</summary>
    public long PadTokenId { get; }

    /// <summary><c>pad_token_id</c>: generation_config.json's when it sets one, else config.json's; null when neither does.</summary>
    public long? DeclaredPadTokenId { get; }

    /// <summary>A folder path if it exists, else a built-in name; anything else is an error.</summary>
    /// <param name="folderOrBuiltIn">A Hugging Face model folder, or one of <see cref="LlamaConfig.BuiltIn"/>'s names.</param>
    /// <param name="seed">Seed of a built-in model's random weights.</param>
    /// <exception cref="InvalidInputException">An unknown name, or a folder whose config or index is unusable (one line).</exception>
    public static LlamaSource Resolve(string folderOrBuiltIn, long seed = 0)
    {
        if (Directory.Exists(folderOrBuiltIn))
        {
            // config.json first: an unsupported model_type is the clearest error for a wrong folder.
            var config = LlamaConfig.FromJson(Path.Combine(folderOrBuiltIn, "config.json"));
            var checkpoint = HuggingFaceCheckpoint.Open(folderOrBuiltIn);
            return new LlamaSource(folderOrBuiltIn, config, checkpoint, GenerationConfig.Read(folderOrBuiltIn), seed);
        }

        if (LlamaConfig.BuiltIn.TryGetValue(folderOrBuiltIn, out var builtIn))
        {
            return new LlamaSource(folderOrBuiltIn.ToLowerInvariant(), builtIn, null, null, seed);
        }

        throw new InvalidInputException(
            $"unknown model '{folderOrBuiltIn}': not a folder, and not a built-in ({string.Join(", ", LlamaConfig.BuiltIn.Keys)})");
    }

    /// <summary>
    /// Builds the whole model on <paramref name="device"/> in <paramref name="dtype"/>, allocating each parameter
    /// there once and filling it tensor by tensor (no full-size float32 copy), evaluation mode, no gradients.
    /// </summary>
    /// <returns>A model the caller owns (dispose it).</returns>
    /// <exception cref="InvalidInputException">A missing, unexpected or wrongly shaped tensor, or a missing shard (one line naming it).</exception>
    public LlamaForCausalLM CreateModel(Device device, ScalarType dtype)
    {
        var model = new LlamaForCausalLM(Config, device, dtype)
        {
            EndOfSequenceIds = EndOfSequenceIds,
            PadTokenId = PadTokenId,
            DeclaredPadTokenId = DeclaredPadTokenId,
        };
        try
        {
            var parameters = model.named_parameters().Select(p => (p.name, (Tensor)p.parameter)).ToList();
            Fill(parameters);
            if (_checkpoint is not null)
            {
                LlamaWeights.RejectUnused(_checkpoint, parameters.Select(p => p.name).ToHashSet(StringComparer.Ordinal), Config);
            }

            model.eval();
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Checks a folder's tensor names against the whole model's without allocating it (a model on the <c>meta</c>
    /// device): what a pipeline does before its stages each read their own tensors, so a checkpoint with a layer more or
    /// less than config.json says is refused as a whole model would be. Nothing to check for a built-in.
    /// </summary>
    /// <exception cref="InvalidInputException">A missing or unexpected tensor (one line naming it).</exception>
    public void CheckTensorNames()
    {
        if (_checkpoint is null)
        {
            return;
        }

        using var shapes = new LlamaForCausalLM(Config, new Device(DeviceType.META), ScalarType.Float32);
        var names = shapes.named_parameters().Select(p => p.name).ToHashSet(StringComparer.Ordinal);
        var missing = names.Order(StringComparer.Ordinal).FirstOrDefault(n => !_checkpoint.Contains(n) && !(Config.TieWordEmbeddings && n == "lm_head.weight"));
        if (missing is not null)
        {
            throw new InvalidInputException($"{_checkpoint.Directory}: tensor {missing} is missing from the checkpoint");
        }

        LlamaWeights.RejectUnused(_checkpoint, names, Config);
    }

    /// <summary>Fills parameters named by their checkpoint keys: from the checkpoint, or randomly for a built-in; large CPU
    /// weights then move to huge pages (<see cref="Runtime.HugePages"/>).</summary>
    /// <exception cref="InvalidInputException">A tensor is missing or has another shape.</exception>
    public void Fill(IEnumerable<(string CheckpointName, Tensor Parameter)> parameters)
    {
        if (_checkpoint is null)
        {
            LlamaWeights.InitializeRandom(parameters, Seed);
        }
        else
        {
            LlamaWeights.Load(parameters, _checkpoint);
        }

        Runtime.HugePages.Collapse(parameters.Select(p => p.Parameter));
    }
}
