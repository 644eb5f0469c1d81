using DistributedInference.Models.Generation;
using DistributedInference.Models.Loading;
using static TorchSharp.torch;

namespace DistributedInference.Models.Llama;

/// <summary>
/// Fills Llama parameters, each given with its checkpoint name: from a Hugging Face checkpoint (tensor by tensor,
/// converted to the parameter's dtype and device as it is read), or randomly from a seed. Random values are seeded
/// per tensor name, so a pipeline stage built alone gets exactly the values of the whole model.
/// </summary>
public static class LlamaWeights
{
    private const double InitializerRange = 0.02;

    /// <summary>Checkpoint tensors a Llama checkpoint may hold that the model does not use.</summary>
    public static bool IsIgnorable(string name) =>
        name.EndsWith("rotary_emb.inv_freq", StringComparison.Ordinal) || name.EndsWith(".masked_bias", StringComparison.Ordinal);

    /// <summary>
    /// transformers' initialisation, reproducible from <paramref name="seed"/>: matrices and embeddings ~ N(0, 0.02),
    /// norm weights 1, biases 0. Drawn on the CPU in the parameter's dtype, one tensor at a time.
    /// </summary>
    public static void InitializeRandom(IEnumerable<(string Name, Tensor Parameter)> parameters, long seed)
    {
        using var noGrad = no_grad();
        foreach (var (name, parameter) in parameters)
        {
            if (parameter.dim() == 1)
            {
                _ = name.EndsWith(".bias", StringComparison.Ordinal) ? parameter.zero_() : parameter.fill_(1.0);
                continue;
            }

            using var generator = new Generator(Seeds.Mix((ulong)seed, Seeds.Hash(name)), CPU);
            if (parameter.device.type == DeviceType.CPU)
            {
                parameter.normal_(0.0, InitializerRange, generator);
            }
            else
            {
                using var values = empty(parameter.shape, parameter.dtype).normal_(0.0, InitializerRange, generator);
                parameter.copy_(values);
            }
        }
    }

    /// <summary>
    /// Copies each parameter from the checkpoint tensor of its name, converting dtype and device; a CPU parameter of
    /// the stored dtype is read into directly (no temporary), so loading needs no more than the weights themselves.
    /// </summary>
    /// <exception cref="InvalidInputException">A tensor is missing, has another shape, or is stored as integers (one line naming it).</exception>
    public static void Load(IEnumerable<(string Name, Tensor Parameter)> parameters, HuggingFaceCheckpoint checkpoint)
    {
        using var noGrad = no_grad();
        foreach (var (name, parameter) in parameters)
        {
            if (!checkpoint.Contains(name))
            {
                throw new InvalidInputException($"{checkpoint.Directory}: checkpoint has no tensor {name}");
            }

            var shape = checkpoint.ShapeOf(name);
            if (!shape.SequenceEqual(parameter.shape))
            {
                throw new InvalidInputException(
                    $"{checkpoint.Directory}: {name} is [{string.Join(", ", shape)}] but the config needs [{string.Join(", ", parameter.shape)}]");
            }

            checkpoint.ReadInto(name, parameter);
        }
    }

    /// <summary>Fails on the first checkpoint tensor that is neither used nor ignorable.</summary>
    /// <param name="checkpoint">The checkpoint.</param>
    /// <param name="used">Names the model read.</param>
    /// <param name="config">Says whether an <c>lm_head.weight</c> may be ignored (tied embeddings).</param>
    /// <exception cref="InvalidInputException">One line naming the unexpected tensor.</exception>
    public static void RejectUnused(HuggingFaceCheckpoint checkpoint, IReadOnlySet<string> used, LlamaConfig config)
    {
        foreach (var name in checkpoint.Names.Order(StringComparer.Ordinal))
        {
            if (!used.Contains(name) && !IsIgnorable(name) && !(config.TieWordEmbeddings && name == "lm_head.weight"))
            {
                throw new InvalidInputException(
                    $"{checkpoint.Directory}: unexpected tensor {name} (not part of a {config.ModelType} model with this config.json)");
            }
        }
    }
}
