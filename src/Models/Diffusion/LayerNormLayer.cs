using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistributedInference.Models.Diffusion;

/// <summary><c>nn.LayerNorm(size, eps)</c> over the last dimension, with weight and bias, uninitialised.</summary>
public sealed class LayerNormLayer : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly Parameter bias;
    private readonly long _size;
    private readonly double _eps;

    public LayerNormLayer(long size, double eps, Device? device = null, ScalarType dtype = ScalarType.Float32)
        : base(nameof(LayerNormLayer))
    {
        weight = new Parameter(empty([size], dtype, device), requires_grad: false);
        bias = new Parameter(empty([size], dtype, device), requires_grad: false);
        _size = size;
        _eps = eps;
        RegisterComponents();
    }

    /// <param name="input">[..., size].</param>
    public override Tensor forward(Tensor input) => nn.functional.layer_norm(input, [_size], weight, bias, _eps);
}
