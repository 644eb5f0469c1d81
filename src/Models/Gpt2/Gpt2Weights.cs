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
                parameter.normal_(0.0, std, generator);
            }
        }
    }

    /// <summary>
    /// Copies every parameter of <paramref name="model"/> from the checkpoint, converting dtypes. Checkpoint keys may
    /// carry the <c>transformer.</c> prefix or not (older GPT-2 uploads); attention-mask buffers are ignored.
    /// </summary>
    public static void Load(nn.Module model, HuggingFaceCheckpoint checkpoint)
    {
        var byOurName = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var name in checkpoint.Names)
        {
            var ours = name.StartsWith("transformer.", StringComparison.Ordinal) || name.StartsWith("lm_head.", StringComparison.Ordinal) ||
                       name.StartsWith("score.", StringComparison.Ordinal)
                ? name
                : "transformer." + name;
            byOurName[ours] = name;
        }

        using var noGrad = no_grad();
        foreach (var (name, parameter) in model.named_parameters())
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
}
