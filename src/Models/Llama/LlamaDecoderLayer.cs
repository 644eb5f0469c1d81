using static TorchSharp.torch;

namespace DistributedInference.Models.Llama;

/// <summary>
/// One decoder layer (transformers' <c>LlamaDecoderLayer</c>): pre-norm attention and pre-norm SwiGLU MLP, each
/// added to the residual stream.
/// </summary>
public sealed class LlamaDecoderLayer : nn.Module<Tensor, Tensor>
{
    private readonly RmsNorm input_layernorm;
    private readonly LlamaAttention self_attn;
    private readonly RmsNorm post_attention_layernorm;
    private readonly LlamaMlp mlp;
    private readonly bool _sliding;

    /// <param name="config">The model's config.</param>
    /// <param name="index">The layer's index: decides sliding-window attention and its cache slot.</param>
    /// <param name="device">Where the uninitialised weights are allocated.</param>
    /// <param name="dtype">The weights' dtype.</param>
    public LlamaDecoderLayer(LlamaConfig config, int index, Device? device = null, ScalarType dtype = ScalarType.Float32)
        : base(nameof(LlamaDecoderLayer))
    {
        Index = index;
        _sliding = config.IsSliding(index);
        input_layernorm = new RmsNorm(config.HiddenSize, config.RmsNormEps, device, dtype);
        self_attn = new LlamaAttention(config, device, dtype);
        post_attention_layernorm = new RmsNorm(config.HiddenSize, config.RmsNormEps, device, dtype);
        mlp = new LlamaMlp(config, device, dtype);
        RegisterComponents();
    }

    /// <summary>The layer's index in the model (and in a cache).</summary>
    public int Index { get; }

    /// <summary>Not used: a layer needs positions and a mask; call <see cref="Forward"/>.</summary>
    public override Tensor forward(Tensor input) => throw new NotSupportedException("LlamaDecoderLayer needs positions: call Forward");

    /// <param name="hidden">[B, T, hidden].</param>
    /// <param name="cos">[B or 1, T, head_dim].</param>
    /// <param name="sin">[B or 1, T, head_dim].</param>
    /// <param name="mask">The pass's masks and cache.</param>
    /// <returns>[B, T, hidden], a new tensor.</returns>
    public Tensor Forward(Tensor hidden, Tensor cos, Tensor sin, LlamaAttentionMask mask)
    {
        hidden = hidden + self_attn.Forward(input_layernorm.forward(hidden), cos, sin, mask, Index, _sliding);
        return hidden + mlp.forward(post_attention_layernorm.forward(hidden));
    }
}
