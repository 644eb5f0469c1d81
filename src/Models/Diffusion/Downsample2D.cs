using static TorchSharp.torch;

namespace DistributedInference.Models.Diffusion;

/// <summary>
/// diffusers' <c>Downsample2D</c> with a convolution: <c>conv</c> 3x3 stride 2. With padding 0 (the VAE encoder) the
/// input is first padded by one zero row and column at the bottom and right, as diffusers does.
/// </summary>
public sealed class Downsample2D : nn.Module<Tensor, Tensor>
{
    private readonly Conv2dLayer conv;
    private readonly long _padding;

    public Downsample2D(long channels, long padding, Device? device = null, ScalarType dtype = ScalarType.Float32)
        : base(nameof(Downsample2D))
    {
        conv = new Conv2dLayer(channels, channels, 3, stride: 2, padding: padding, device: device, dtype: dtype);
        _padding = padding;
        RegisterComponents();
    }

    /// <param name="input">[B, C, H, W].</param>
    /// <returns>[B, C, H', W'], about half the size.</returns>
    public override Tensor forward(Tensor input) =>
        conv.forward(_padding == 0 ? nn.functional.pad(input, [0, 1, 0, 1]) : input);
}
