using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistributedInference.Models.Diffusion;

/// <summary>
/// diffusers' <c>Transformer2DModel</c> on continuous input: <c>norm</c> (GroupNorm, eps 1e-6), <c>proj_in</c>, the
/// pixels as tokens through <c>transformer_blocks</c>, <c>proj_out</c>, plus the input. proj_in/proj_out are 1x1
/// convolutions applied before flattening (SD 1.x), or with <c>use_linear_projection</c> Linear layers applied to the
/// flattened [B, H*W, C] tokens (SD 2.x).
/// </summary>
public sealed class Transformer2DModel : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly GroupNormLayer norm;
    private readonly nn.Module<Tensor, Tensor> proj_in;
    private readonly ModuleList<BasicTransformerBlock> transformer_blocks;
    private readonly nn.Module<Tensor, Tensor> proj_out;
    private readonly bool _linear;

    /// <param name="channels">Input channels (= heads x headDim).</param>
    /// <param name="heads">Attention heads.</param>
    /// <param name="layers"><c>transformer_layers_per_block</c>.</param>
    /// <param name="crossAttentionDim">Width of the text embeddings.</param>
    /// <param name="groups">norm_num_groups of the GroupNorm.</param>
    /// <param name="linearProjection"><c>use_linear_projection</c>.</param>
    public Transformer2DModel(long channels, int heads, int layers, long crossAttentionDim, int groups, bool linearProjection, Device? device = null, ScalarType dtype = ScalarType.Float32)
        : base(nameof(Transformer2DModel))
    {
        var headDim = (int)(channels / heads);
        _linear = linearProjection;
        norm = new GroupNormLayer(groups, channels, 1e-6, device, dtype);
        proj_in = linearProjection ? Layers.Linear(channels, channels, bias: true, device, dtype) : new Conv2dLayer(channels, channels, 1, device: device, dtype: dtype);
        transformer_blocks = nn.ModuleList(Enumerable.Range(0, layers).Select(_ => new BasicTransformerBlock(channels, heads, headDim, crossAttentionDim, device, dtype)).ToArray());
        proj_out = linearProjection ? Layers.Linear(channels, channels, bias: true, device, dtype) : new Conv2dLayer(channels, channels, 1, device: device, dtype: dtype);
        RegisterComponents();
    }

    /// <param name="input">[B, C, H, W].</param>
    /// <param name="context">[B, S, cross_attention_dim].</param>
    /// <returns>[B, C, H, W].</returns>
    public override Tensor forward(Tensor input, Tensor context)
    {
        var (batch, channels, height, width) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3]);
        using var scope = NewDisposeScope();
        var hidden = norm.forward(input);
        if (_linear)
        {
            hidden = proj_in.forward(hidden.permute(0, 2, 3, 1).reshape(batch, height * width, channels));
        }
        else
        {
            hidden = proj_in.forward(hidden).permute(0, 2, 3, 1).reshape(batch, height * width, channels);
        }

        foreach (var block in transformer_blocks)
        {
            hidden = block.forward(hidden, context);
        }

        hidden = _linear
            ? proj_out.forward(hidden).reshape(batch, height, width, channels).permute(0, 3, 1, 2).contiguous()
            : proj_out.forward(hidden.reshape(batch, height, width, channels).permute(0, 3, 1, 2).contiguous());
        return (hidden + input).MoveToOuterDisposeScope();
    }
}
