using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistributedInference.Models.Gpt2;

/// <summary>One transformer block: pre-norm attention and pre-norm MLP, each with a residual connection.</summary>
public sealed class Gpt2Block : nn.Module<Tensor, Tensor>
{
    private readonly LayerNorm ln_1;
    private readonly Gpt2Attention attn;
    private readonly LayerNorm ln_2;
    private readonly Gpt2Mlp mlp;

    public Gpt2Block(Gpt2Config config)
        : base(nameof(Gpt2Block))
    {
        ln_1 = nn.LayerNorm(config.EmbeddingSize, config.LayerNormEpsilon);
        attn = new Gpt2Attention(config);
        ln_2 = nn.LayerNorm(config.EmbeddingSize, config.LayerNormEpsilon);
        mlp = new Gpt2Mlp(config);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input) =>
        Forward(input, AttentionContext.Create(null, input.shape[1], null, input.device), layer: 0);

    public Tensor Forward(Tensor input, AttentionContext context, int layer)
    {
        var hidden = input + attn.Forward(ln_1.forward(input), context, layer);
        return hidden + mlp.forward(ln_2.forward(hidden));
    }
}
