using static TorchSharp.torch;

namespace DistributedInference.Models.Gpt2;

/// <summary>Multi-head causal self-attention with GPT-2's fused query/key/value projection.</summary>
public sealed class Gpt2Attention : nn.Module<Tensor, Tensor>
{
    private readonly Conv1D c_attn;
    private readonly Conv1D c_proj;
    private readonly int _heads;
    private readonly long _embedding;

    public Gpt2Attention(Gpt2Config config)
        : base(nameof(Gpt2Attention))
    {
        _heads = config.HeadCount;
        _embedding = config.EmbeddingSize;
        c_attn = new Conv1D(_embedding, 3 * _embedding);
        c_proj = new Conv1D(_embedding, _embedding);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input) =>
        Forward(input, AttentionContext.Create(null, input.shape[1], null, input.device), layer: 0);

    public Tensor Forward(Tensor input, AttentionContext context, int layer)
    {
        var (batch, steps) = (input.shape[0], input.shape[1]);
        var qkv = c_attn.forward(input).split(_embedding, dim: 2);
        var query = Heads(qkv[0], batch, steps);
        var key = Heads(qkv[1], batch, steps);
        var value = Heads(qkv[2], batch, steps);
        if (context.Cache is { } cache)
        {
            (key, value) = cache.Append(layer, key, value);
        }

        var attended = nn.functional.scaled_dot_product_attention(query, key, value, context.Mask, 0.0, context.IsCausal);
        return c_proj.forward(attended.transpose(1, 2).reshape(batch, steps, _embedding));
    }

    private Tensor Heads(Tensor x, long batch, long steps) =>
        x.view(batch, steps, _heads, _embedding / _heads).transpose(1, 2);
}
