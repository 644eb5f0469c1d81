using DistributedInference.Models.Loading;
using static TorchSharp.torch;

namespace DistributedInference.Models.Gpt2;

/// <summary>Fills a GPT-2 module's parameters: from a Hugging Face checkpoint, or randomly as transformers does.</summary>
public static class Gpt2Weights
{
    private const double InitializerRange = 0.02;

    /// <summary>
    /// transformers' GPT-2 initialisation, reproducible from <paramref name="seed"/>: weights ~ N(0, 0.02), the
    /// residual projections (<c>c_proj</c>) scaled by 1/sqrt(2 n_layer), biases 0, layer norms 1 and 0.
    /// </summary>
    public static void InitializeRandom(nn.Module model, Gpt2Config config, long seed)
    {
        var generator = new Generator((ulong)seed);
        using var noGrad = no_grad();
        foreach (var (name, parameter) in model.named_parameters().OrderBy(p => p.name, StringComparer.Ordinal))
        {
            var isNorm = name.Contains("ln_", StringComparison.Ordinal);
            if (isNorm)
            {
                _ = name.EndsWith(".weight", StringComparison.Ordinal) ? parameter.fill_(1.0) : parameter.zero_();
            }
            else if (name.EndsWith(".bias", StringComparison.Ordinal))
            {
                parameter.zero_();
            }
            else
            {
                var std = name.EndsWith("c_proj.weight", StringComparison.Ordinal)
                    ? InitializerRange / Math.Sqrt(2.0 * config.LayerCount)
                    : InitializerRange;
                if (parameter.is_contiguous())
                {
                    parameter.normal_(0.0, std, generator);
                }
                else
                {
                    // A Conv1D weight is a transposed view: drawn in its logical order, as a contiguous one always was.
                    using var values = empty(parameter.shape, parameter.dtype, parameter.device).normal_(0.0, std, generator);
                    parameter.copy_(values);
                }
            }
        }
    }

    /// <summary>
    /// Copies every parameter of <paramref name="model"/> from the checkpoint, converting dtypes. Checkpoint keys may
    /// carry the <c>transformer.</c> prefix or not (older GPT-2 uploads). Every other checkpoint tensor must be one the
    /// model may leave unread (<see cref="IsIgnorable"/>), as transformers reports unused weights: a checkpoint with more
    /// layers than config.json's n_layer, or any stray tensor, is refused before a tensor is read.
    /// </summary>
    /// <exception cref="InvalidInputException">A missing, unexpected or wrongly shaped tensor, or one stored as integers (one line naming it).</exception>
    public static void Load(nn.Module model, HuggingFaceCheckpoint checkpoint)
    {
        var byOurName = checkpoint.Names.ToDictionary(OurName, name => name, StringComparer.Ordinal);
        var parameters = model.named_parameters().ToList();
        RejectUnused(checkpoint, parameters.Select(p => p.name).ToHashSet(StringComparer.Ordinal), classifier: model is Gpt2ForSequenceClassification);

        using var noGrad = no_grad();
        foreach (var (name, parameter) in parameters)
        {
            if (!byOurName.TryGetValue(name, out var stored))
            {
                throw new InvalidInputException($"{checkpoint.Directory}: checkpoint has no tensor for {name}");
            }

            var shape = checkpoint.ShapeOf(stored);
            if (!shape.SequenceEqual(parameter.shape))
            {
                throw new InvalidInputException(
                    $"{checkpoint.Directory}: {stored} is [{string.Join(", ", shape)}] but the config needs [{string.Join(", ", parameter.shape)}]");
            }

            checkpoint.ReadInto(stored, parameter);
        }
    }

    /// <summary>The name a checkpoint key has in these modules: keys without the <c>transformer.</c> prefix (older uploads) get it.</summary>
    public static string OurName(string stored) =>
        stored.StartsWith("transformer.", StringComparison.Ordinal) || stored.StartsWith("lm_head.", StringComparison.Ordinal) || stored.StartsWith("score.", StringComparison.Ordinal)
            ? stored
            : "transformer." + stored;

    /// <summary>
    /// Checkpoint tensors no parameter reads that are still no error: the attention-mask buffers (<c>attn.bias</c>,
    /// <c>attn.masked_bias</c>), <c>lm_head.weight</c> when the head is tied to <c>wte</c> (or a classifier is built), and
    /// a classifier folder's <c>score.weight</c> when its language model is built (task logits or generate).
    /// </summary>
    /// <param name="ourName">The tensor's name in these modules (<see cref="OurName"/>).</param>
    /// <param name="classifier">The model being built is the classifier.</param>
    public static bool IsIgnorable(string ourName, bool classifier) =>
        ourName.EndsWith(".attn.bias", StringComparison.Ordinal) || ourName.EndsWith(".attn.masked_bias", StringComparison.Ordinal) ||
        ourName == "lm_head.weight" || (ourName == "score.weight" && !classifier);

    /// <summary>
    /// The parameter names of the model <paramref name="config"/> describes, read from a copy of its modules at the smallest
    /// sizes (nothing large is allocated): what a pipeline checks a folder against before its stages read their tensors.
    /// </summary>
    public static IReadOnlySet<string> ParameterNames(Gpt2Config config, bool classifier, bool tiedHead)
    {
        var small = config with { VocabSize = 1, MaxPositions = 1, EmbeddingSize = 1, HeadCount = 1, InnerSize = 1, LabelCount = 1 };
        using nn.Module model = classifier ? new Gpt2ForSequenceClassification(small) : new Gpt2LMHeadModel(small, tiedHead);
        return model.named_parameters().Select(p => p.name).ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>Fails on the first checkpoint tensor that is neither used (<paramref name="used"/>, in our names) nor ignorable.</summary>
    /// <exception cref="InvalidInputException">One line naming the unexpected tensor.</exception>
    public static void RejectUnused(HuggingFaceCheckpoint checkpoint, IReadOnlySet<string> used, bool classifier)
    {
        var unexpected = checkpoint.Names.Order(StringComparer.Ordinal).FirstOrDefault(name => !used.Contains(OurName(name)) && !IsIgnorable(OurName(name), classifier));
        if (unexpected is not null)
        {
            throw new InvalidInputException($"{checkpoint.Directory}: unexpected tensor {unexpected} (not part of a gpt2 model with this config.json)");
        }
    }
}
