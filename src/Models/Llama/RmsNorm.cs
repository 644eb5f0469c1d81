using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistributedInference.Models.Llama;

/// <summary>
/// Root-mean-square normalisation over the last dimension (transformers' <c>LlamaRMSNorm</c>): computed in float32,
/// cast back to the input's dtype, then multiplied by <c>weight</c>, in that order. A float32 input is used as it is
/// (no conversion round trip), and the statistics are updated in place (one temporary fewer per call).
/// </summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly double _eps;

    /// <param name="size">Width of the last dimension.</param>
    /// <param name="eps"><c>rms_norm_eps</c>.</param>
    /// <param name="device">Where the (uninitialised) weight is allocated.</param>
    /// <param name="dtype">The weight's dtype.</param>
    public RmsNorm(long size, double eps, Device? device = null, ScalarType dtype = ScalarType.Float32)
        : base(nameof(RmsNorm))
    {
        weight = new Parameter(empty([size], dtype, device), requires_grad: false);
        _eps = eps;
        RegisterComponents();
    }

    /// <param name="input">[..., size] in any floating dtype.</param>
    /// <returns>The normalised input, same shape; dtype of weight * input (the input's when they agree).</returns>
    public override Tensor forward(Tensor input)
    {
        var isFloat32 = input.dtype == ScalarType.Float32;
        var x = isFloat32 ? input : input.to(ScalarType.Float32);
        var scale = x.square().mean([-1], keepdim: true).add_(_eps).rsqrt_();
        var normalized = x * scale;
        return weight * (isFloat32 ? normalized : normalized.to(input.dtype));
    }
}
