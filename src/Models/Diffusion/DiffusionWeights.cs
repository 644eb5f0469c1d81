using DistributedInference.Models.Generation;
using DistributedInference.Models.Loading;
using static TorchSharp.torch;

namespace DistributedInference.Models.Diffusion;

/// <summary>
/// Fills a pipeline component's parameters, each named by its checkpoint key: strictly from a checkpoint (every
/// parameter found with its shape, every stored tensor used; a missing, unexpected or misshaped tensor is one line), or
/// randomly from a seed for a built-in (seeded per component and tensor name, so a tensor's values never depend on
/// which others are drawn).
/// </summary>
public static class DiffusionWeights
{
    /// <summary>
    /// The name diffusers before 0.14 saved a VAE attention tensor under (<c>query</c>, <c>key</c>, <c>value</c>,
    /// <c>proj_attn</c>), for its modern name (<c>to_q</c>, <c>to_k</c>, <c>to_v</c>, <c>to_out.0</c>); null when the
    /// name has no legacy form. diffusers renames them the same way on load.
    /// </summary>
    public static string? LegacyAttentionName(string name)
    {
        foreach (var (modern, legacy) in new[] { (".to_q.", ".query."), (".to_k.", ".key."), (".to_v.", ".value."), (".to_out.0.", ".proj_attn.") })
        {
            var at = name.LastIndexOf(modern, StringComparison.Ordinal);
            if (at >= 0 && name.Contains("mid_block.attentions.", StringComparison.Ordinal))
            {
                return string.Concat(name.AsSpan(0, at), legacy, name.AsSpan(at + modern.Length));
            }
        }

        return null;
    }

    /// <summary>Checkpoint tensors a component may hold that the model does not use (old CLIP files' position_ids buffer).</summary>
    public static bool IsIgnorable(string name) => name.EndsWith("embeddings.position_ids", StringComparison.Ordinal);

    /// <summary>
    /// Copies each parameter of <paramref name="module"/> from the checkpoint tensor of its name (or its legacy VAE
    /// attention name), converting dtype and device, then checks that every stored tensor was used.
    /// </summary>
    /// <exception cref="InvalidInputException">A tensor is missing, misshaped or unexpected (one line naming it and the folder).</exception>
    public static void Load(nn.Module module, HuggingFaceCheckpoint checkpoint)
    {
        using var noGrad = no_grad();
        var used = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, parameter) in module.named_parameters())
        {
            var stored = checkpoint.Contains(name) ? name
                : LegacyAttentionName(name) is { } legacy && checkpoint.Contains(legacy) ? legacy
                : throw new InvalidInputException($"{checkpoint.Directory}: checkpoint has no tensor {name}");
            var shape = checkpoint.ShapeOf(stored);
            if (!shape.SequenceEqual(parameter.shape))
            {
                throw new InvalidInputException(
                    $"{checkpoint.Directory}: {stored} is [{string.Join(", ", shape)}] but the config needs [{string.Join(", ", parameter.shape)}]");
            }

            checkpoint.ReadInto(stored, parameter);
            used.Add(stored);
        }

        var unexpected = checkpoint.Names.Where(n => !used.Contains(n) && !IsIgnorable(n)).Order(StringComparer.Ordinal).FirstOrDefault();
        if (unexpected is not null)
        {
            throw new InvalidInputException($"{checkpoint.Directory}: unexpected tensor {unexpected} (not part of the model its config.json describes)");
        }
    }

    /// <summary>
    /// Random weights from <paramref name="seed"/>: matrices and kernels ~ N(0, 1/fan_in) (unit-variance outputs),
    /// embeddings ~ N(0, 1), norm weights 1, biases 0; drawn on the CPU in float32 per tensor, then converted.
    /// </summary>
    /// <param name="component">The component's folder name (text_encoder, unet, vae), part of each tensor's seed.</param>
    public static void InitializeRandom(nn.Module module, string component, long seed)
    {
        foreach (var (name, parameter) in module.named_parameters())
        {
            InitializeRandom(name, parameter, component, seed);
        }
    }

    /// <summary>One tensor of <see cref="InitializeRandom(nn.Module, string, long)"/>, by its checkpoint name.</summary>
    public static void InitializeRandom(string name, Tensor parameter, string component, long seed)
    {
        using var noGrad = no_grad();
        if (parameter.dim() == 1)
        {
            _ = name.EndsWith(".bias", StringComparison.Ordinal) ? parameter.zero_() : parameter.fill_(1.0);
            return;
        }

        using var generator = new Generator(Seeds.Mix((ulong)seed, Seeds.Hash($"{component}/{name}")), CPU);
        var fanIn = parameter.shape.Skip(1).Aggregate(1L, (a, b) => a * b);
        var std = name.Contains("embedding", StringComparison.Ordinal) ? 1.0 : 1.0 / Math.Sqrt(fanIn);
        using var values = empty(parameter.shape, ScalarType.Float32).normal_(0.0, std, generator);
        parameter.copy_(values);
    }
}
