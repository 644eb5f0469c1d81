using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistributedInference.Models.Diffusion;

/// <summary>
/// <c>nn.Conv2d</c> with square kernels, zero padding and a bias (<c>weight</c> [out, in, k, k], <c>bias</c> [out]),
/// allocated uninitialised on the target device and dtype.
/// </summary>
public sealed class Conv2dLayer : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly Parameter bias;
    private readonly long _stride;
    private readonly long _padding;

    public Conv2dLayer(long inChannels, long outChannels, long kernel, long stride = 1, long padding = 0, Device? device = null, ScalarType dtype = ScalarType.Float32)
        : base(nameof(Conv2dLayer))
    {
        weight = new Parameter(empty([outChannels, inChannels, kernel, kernel], dtype, device), requires_grad: false);
        bias = new Parameter(empty([outChannels], dtype, device), requires_grad: false);
        _stride = stride;
        _padding = padding;
        RegisterComponents();
    }

    /// <param name="input">[B, in, H, W].</param>
    /// <returns>[B, out, H', W'].</returns>
    public override Tensor forward(Tensor input) =>
        nn.functional.conv2d(input, weight, bias, strides: [_stride, _stride], padding: [_padding, _padding]);
}
