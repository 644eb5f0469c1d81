using static TorchSharp.torch;

namespace DistributedInference.Models.Diffusion;

/// <summary>
/// diffusers' <c>BasicTransformerBlock</c> as Stable Diffusion's UNet uses it (layer norms, eps 1e-5): self-attention
/// <c>attn1</c>, cross-attention <c>attn2</c> on the text embeddings, GEGLU feed-forward <c>ff</c>, each pre-normed
/// (<c>norm1</c>, <c>norm2</c>, <c>norm3</c>) and added to its input.
/// </summary>
public sealed class BasicTransformerBlock : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly LayerNormLayer norm1;
    private readonly Attention attn1;
    private readonly LayerNormLayer norm2;
    private readonly Attention attn2;
    private readonly LayerNormLayer norm3;
    private readonly FeedForward ff;

    public BasicTransformerBlock(long dim, int heads, int headDim, long crossAttentionDim, Device? device = null, ScalarType dtype = ScalarType.Float32)
        : base(nameof(BasicTransformerBlock))
    {
        norm1 = new LayerNormLayer(dim, 1e-5, device, dtype);
        attn1 = new Attention(dim, null, heads, headDim, bias: false, device: device, dtype: dtype);
        norm2 = new LayerNormLayer(dim, 1e-5, device, dtype);
        attn2 = new Attention(dim, crossAttentionDim, heads, headDim, bias: false, device: device, dtype: dtype);
        norm3 = new LayerNormLayer(dim, 1e-5, device, dtype);
        ff = new FeedForward(dim, device, dtype);
        RegisterComponents();
    }

    /// <param name="input">[B, N, dim].</param>
    /// <param name="context">[B, S, cross_attention_dim] text embeddings.</param>
    public override Tensor forward(Tensor input, Tensor context)
    {
        using var scope = NewDisposeScope();
        var hidden = attn1.forward(norm1.forward(input)) + input;
        hidden = attn2.Forward(norm2.forward(hidden), context) + hidden;
        return (ff.forward(norm3.forward(hidden)) + hidden).MoveToOuterDisposeScope();
    }
}
