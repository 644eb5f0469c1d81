using static TorchSharp.torch;

namespace DistributedInference.Models.Diffusion;

/// <summary>
/// One CLIP encoder layer (transformers' <c>CLIPEncoderLayer</c>), pre-norm: <c>x + self_attn(layer_norm1(x))</c>, then
/// <c>x + mlp(layer_norm2(x))</c>.
/// </summary>
public sealed class ClipEncoderLayer : nn.Module<Tensor, Tensor>
{
    private readonly ClipAttention self_attn;
    private readonly LayerNormLayer layer_norm1;
    private readonly ClipMlp mlp;
    private readonly LayerNormLayer layer_norm2;

    public ClipEncoderLayer(ClipTextConfig config, Device? device = null, ScalarType dtype = ScalarType.Float32)
        : base(nameof(ClipEncoderLayer))
    {
        self_attn = new ClipAttention(config, device, dtype);
        layer_norm1 = new LayerNormLayer(config.HiddenSize, config.LayerNormEps, device, dtype);
        mlp = new ClipMlp(config, device, dtype);
        layer_norm2 = new LayerNormLayer(config.HiddenSize, config.LayerNormEps, device, dtype);
        RegisterComponents();
    }

    /// <param name="input">[B, T, hidden].</param>
    public override Tensor forward(Tensor input)
    {
        var hidden = input + self_attn.forward(layer_norm1.forward(input));
        return hidden + mlp.forward(layer_norm2.forward(hidden));
    }
}
