using static TorchSharp.torch;

namespace DistributedInference.Models.Llama;

/// <summary>
/// Rotary position embedding (transformers' <c>LlamaRotaryEmbedding</c> and <c>apply_rotary_pos_emb</c>): cos and
/// sin of position x inverse frequency, computed in float32 from position ids, then applied to each head as
/// <c>x * cos + rotate_half(x) * sin</c>. Holds no tensor: the inverse frequencies are kept as numbers and made on
/// the positions' device per call, so a module's dtype conversion never touches them.
/// </summary>
public sealed class RotaryEmbedding
{
    private readonly float[] _inverseFrequencies;

    /// <param name="config">Supplies head_dim and the rope type and parameters.</param>
    public RotaryEmbedding(LlamaConfig config)
    {
        _inverseFrequencies = config.Rope.InverseFrequencies(config.HeadDim).Select(f => (float)f).ToArray();
    }

    /// <summary>The inverse frequencies, [head_dim / 2] float32 on the CPU; the caller owns the tensor.</summary>
    public Tensor InverseFrequencies() => tensor(_inverseFrequencies);

    /// <param name="positionIds">[B or 1, T] int64.</param>
    /// <param name="dtype">The dtype of the returned tensors (the hidden states').</param>
    /// <returns>cos and sin, each [B or 1, T, head_dim], in <paramref name="dtype"/>, on the positions' device.</returns>
    public (Tensor Cos, Tensor Sin) Compute(Tensor positionIds, ScalarType dtype)
    {
        var inverse = tensor(_inverseFrequencies, device: positionIds.device);
        var frequencies = positionIds.to(ScalarType.Float32).unsqueeze(-1) * inverse;
        var angles = cat([frequencies, frequencies], -1);
        return (angles.cos().to(dtype), angles.sin().to(dtype));
    }

    /// <summary>Rotates queries or keys.</summary>
    /// <param name="x">[B, heads, T, head_dim].</param>
    /// <param name="cos">[B or 1, T, head_dim] from <see cref="Compute"/>.</param>
    /// <param name="sin">[B or 1, T, head_dim] from <see cref="Compute"/>.</param>
    /// <returns>A new tensor shaped like <paramref name="x"/>.</returns>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        var half = x.shape[^1] / 2;
        var rotated = cat([x.narrow(-1, half, half).neg(), x.narrow(-1, 0, half)], -1);
        return (x * cos.unsqueeze(1)) + (rotated * sin.unsqueeze(1));
    }
}
