using DistributedInference.Models.Kernels;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistributedInference.Models.Llama;

/// <summary>
/// Grouped-query self-attention with rotary embeddings (transformers' <c>LlamaAttention</c>, with the Qwen2 q/k/v
/// biases and the Qwen3 per-head <c>q_norm</c>/<c>k_norm</c> applied before RoPE as switches). The cache stores
/// key/value heads unrepeated; scores are scaled by head_dim^-0.5. With grouped-query attention, a pass with an
/// explicit mask or none (every decoding step) attends grouped: the query heads that share a key/value head become
/// rows of one attention over that head, so no key or value is copied; the fused causal pass (a prompt without
/// padding) repeats keys and values to the query heads (expand and reshape, as transformers' <c>repeat_kv</c>).
/// </summary>
public sealed class LlamaAttention : nn.Module<Tensor, Tensor>
{
    private readonly Linear q_proj;
    private readonly Linear k_proj;
    private readonly Linear v_proj;
    private readonly Linear o_proj;
    private readonly RmsNorm? q_norm;
    private readonly RmsNorm? k_norm;
    private readonly int _heads;
    private readonly int _kvHeads;
    private readonly int _headDim;

    /// <summary>Allocates uninitialised weights on <paramref name="device"/> in <paramref name="dtype"/>.</summary>
    public LlamaAttention(LlamaConfig config, Device? device = null, ScalarType dtype = ScalarType.Float32)
        : base(nameof(LlamaAttention))
    {
        _heads = config.HeadCount;
        _kvHeads = config.KeyValueHeadCount;
        _headDim = config.HeadDim;
        q_proj = LlamaLinear.Create(config.HiddenSize, (long)_heads * _headDim, config.QkvBias, device, dtype);
        k_proj = LlamaLinear.Create(config.HiddenSize, (long)_kvHeads * _headDim, config.QkvBias, device, dtype);
        v_proj = LlamaLinear.Create(config.HiddenSize, (long)_kvHeads * _headDim, config.QkvBias, device, dtype);
        o_proj = LlamaLinear.Create((long)_heads * _headDim, config.HiddenSize, config.OutputBias, device, dtype);
        if (config.QueryKeyNorm)
        {
            q_norm = new RmsNorm(_headDim, config.RmsNormEps, device, dtype);
            k_norm = new RmsNorm(_headDim, config.RmsNormEps, device, dtype);
        }

        RegisterComponents();
    }

    /// <summary>Not used: attention needs positions and a mask; call <see cref="Forward"/>.</summary>
    public override Tensor forward(Tensor input) => throw new NotSupportedException("LlamaAttention needs positions: call Forward");

    /// <param name="input">[B, T, hidden], already normalised.</param>
    /// <param name="cos">[B or 1, T, head_dim] from <see cref="RotaryEmbedding.Compute"/>.</param>
    /// <param name="sin">[B or 1, T, head_dim].</param>
    /// <param name="mask">The pass's masks and cache.</param>
    /// <param name="layer">This layer's index in the cache.</param>
    /// <param name="sliding">Whether this layer uses the sliding-window mask.</param>
    /// <returns>[B, T, hidden].</returns>
    public Tensor Forward(Tensor input, Tensor cos, Tensor sin, LlamaAttentionMask mask, int layer, bool sliding)
    {
        var (batch, steps) = (input.shape[0], input.shape[1]);
        var query = q_proj.Apply(input).view(batch, steps, _heads, _headDim);
        var key = k_proj.Apply(input).view(batch, steps, _kvHeads, _headDim);
        var value = v_proj.Apply(input).view(batch, steps, _kvHeads, _headDim).transpose(1, 2);
        if (q_norm is not null)
        {
            query = q_norm.forward(query);
            key = k_norm!.forward(key);
        }

        query = RotaryEmbedding.Apply(query.transpose(1, 2), cos, sin);
        key = RotaryEmbedding.Apply(key.transpose(1, 2), cos, sin);
        if (mask.Cache is { } cache)
        {
            (key, value) = cache.Append(layer, key, value);
        }

        var allowed = mask.For(sliding);
        Tensor attended;
        if (_heads == _kvHeads)
        {
            attended = nn.functional.scaled_dot_product_attention(query, key, value, allowed, 0.0, mask.IsCausal);
        }
        else if (!mask.IsCausal)
        {
            // [B, heads, T, d] as [B, kv heads, group * T, d]: row g * T + t is query head (kv * group + g) at step t.
            var group = _heads / _kvHeads;
            var grouped = query.reshape(batch, _kvHeads, group * steps, _headDim);
            if (allowed is not null && steps > 1)
            {
                allowed = allowed.repeat(1, 1, group, 1);
            }

            attended = nn.functional.scaled_dot_product_attention(grouped, key, value, allowed, 0.0, false)
                .view(batch, _heads, steps, _headDim);
        }
        else
        {
            attended = nn.functional.scaled_dot_product_attention(query, Repeat(key), Repeat(value), allowed, 0.0, true);
        }

        return o_proj.Apply(attended.transpose(1, 2).reshape(batch, steps, (long)_heads * _headDim));
    }

    // [B, kv heads, S, d] to [B, heads, S, d], each key/value head repeated for its group of query heads.
    private Tensor Repeat(Tensor x)
    {
        var (batch, length) = (x.shape[0], x.shape[2]);
        return x.unsqueeze(2).expand(batch, _kvHeads, _heads / _kvHeads, length, _headDim).reshape(batch, _heads, length, _headDim);
    }
}
