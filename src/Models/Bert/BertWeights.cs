using DistributedInference.Models.Loading;
using static TorchSharp.torch;

namespace DistributedInference.Models.Bert;

/// <summary>Fills a <see cref="BertModel"/>'s parameters: from a Hugging Face checkpoint, or randomly as transformers does.</summary>
public static class BertWeights
{
    /// <summary>Prefix of BertModel weights inside BertFor* checkpoints; sentence-transformers folders store them without it.</summary>
    public const string Prefix = "bert.";

    /// <summary>
    /// transformers' <c>BertPreTrainedModel._init_weights</c>, reproducible from <paramref name="seed"/>: every
    /// matrix and embedding ~ N(0, initializer_range), biases 0, LayerNorm 1 and 0, the pad token's word embedding 0.
    /// </summary>
    public static void InitializeRandom(BertModel model, long seed)
    {
        var generator = new Generator((ulong)seed);
        using var noGrad = no_grad();
        foreach (var (name, parameter) in model.named_parameters().OrderBy(p => p.name, StringComparer.Ordinal))
        {
            if (name.Contains("LayerNorm.", StringComparison.Ordinal))
            {
                _ = name.EndsWith(".weight", StringComparison.Ordinal) ? parameter.fill_(1.0) : parameter.zero_();
            }
            else if (name.EndsWith(".bias", StringComparison.Ordinal))
            {
                parameter.zero_();
            }
            else
            {
                parameter.normal_(0.0, model.Config.InitializerRange, generator);
            }
        }

        if (model.Config.PadTokenId is { } pad)
        {
            model.get_parameter("embeddings.word_embeddings.weight")![pad].zero_();
        }
    }

    /// <summary>
    /// Copies every parameter of <paramref name="model"/> from the checkpoint, converting the stored dtype (F32, F16,
    /// BF16) to the model's. Keys may carry the <c>bert.</c> prefix or not; <c>embeddings.position_ids</c> buffers are
    /// ignored. Strict: every other tensor must be one of the model's, with its shape.
    /// </summary>
    /// <exception cref="InvalidInputException">A parameter has no tensor, a tensor is not a BertModel parameter
    /// (e.g. a task head), a shape differs from the config's, or a weight is stored as integers; the message names the tensor.</exception>
    public static void Load(BertModel model, HuggingFaceCheckpoint checkpoint)
    {
        var stored = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var name in checkpoint.Names)
        {
            var ours = name.StartsWith(Prefix, StringComparison.Ordinal) ? name[Prefix.Length..] : name;
            if (ours == "embeddings.position_ids")
            {
                continue;
            }

            if (!stored.TryAdd(ours, name))
            {
                throw new InvalidInputException($"{checkpoint.Directory}: both {ours} and {Prefix}{ours} are stored");
            }
        }

        var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
        var unexpected = stored.Keys.Where(n => !parameters.ContainsKey(n)).Order(StringComparer.Ordinal).FirstOrDefault();
        if (unexpected is not null)
        {
            throw new InvalidInputException($"{checkpoint.Directory}: unexpected tensor {stored[unexpected]} (not a BertModel parameter)");
        }

        using var noGrad = no_grad();
        foreach (var (name, parameter) in parameters)
        {
            if (!stored.TryGetValue(name, out var key))
            {
                throw new InvalidInputException($"{checkpoint.Directory}: checkpoint has no tensor for {name}");
            }

            var shape = checkpoint.ShapeOf(key);
            if (!shape.SequenceEqual(parameter.shape))
            {
                throw new InvalidInputException(
                    $"{checkpoint.Directory}: {key} is [{string.Join(", ", shape)}] but the config needs [{string.Join(", ", parameter.shape)}]");
            }

            checkpoint.ReadInto(key, parameter);
        }
    }
}
