using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistributedInference.Models.Diffusion;

/// <summary>
/// CLIP's multi-head self-attention (transformers' <c>CLIPAttention</c>): biased q/k/v/out projections, scores scaled
/// by head_dim^-0.5, the causal mask of the text model (Stable Diffusion passes no padding mask: padding positions
/// attend like any other).
/// </summary>
public sealed class ClipAttention : nn.Module<Tensor, Tensor>
{
    private readonly Linear k_proj;
    private readonly Linear v_proj;
    private readonly Linear q_proj;
    private readonly Linear out_proj;
    private readonly int _heads;
    private readonly int _headDim;

    public ClipAttention(ClipTextConfig config, Device? device = null, ScalarType dtype = ScalarType.Float32)
        : base(nameof(ClipAttention))
    {
        _heads = config.HeadCount;
        _headDim = config.HeadDim;
        k_proj = Layers.Linear(config.HiddenSize, config.HiddenSize, bias: true, device, dtype);
        v_proj = Layers.Linear(config.HiddenSize, config.HiddenSize, bias: true, device, dtype);
        q_proj = Layers.Linear(config.HiddenSize, config.HiddenSize, bias: true, device, dtype);
        out_proj = Layers.Linear(config.HiddenSize, config.HiddenSize, bias: true, device, dtype);
        RegisterComponents();
    }

    /// <param name="input">[B, T, hidden].</param>
    /// <returns>[B, T, hidden].</returns>
    public override Tensor forward(Tensor input)
    {
        var (batch, steps) = (input.shape[0], input.shape[1]);
        var query = q_proj.forward(input).view(batch, steps, _heads, _headDim).transpose(1, 2);
        var key = k_proj.forward(input).view(batch, steps, _heads, _headDim).transpose(1, 2);
        var value = v_proj.forward(input).view(batch, steps, _heads, _headDim).transpose(1, 2);
        var attended = nn.functional.scaled_dot_product_attention(query, key, value, null, 0.0, is_casual: true);
        return out_proj.forward(attended.transpose(1, 2).reshape(batch, steps, (long)_heads * _headDim));
    }
}
