using static TorchSharp.torch;

namespace DistributedInference.Models.Diffusion;

/// <summary>
/// diffusers' <c>Upsample2D</c> with a convolution: nearest-neighbour upsampling (2x, or to the size of the skip
/// connection it meets, as the UNet forwards it for sizes that are not multiples of its overall factor), then
/// <c>conv</c> 3x3.
/// </summary>
public sealed class Upsample2D : nn.Module<Tensor, Tensor>
{
    private readonly Conv2dLayer conv;

    public Upsample2D(long channels, Device? device = null, ScalarType dtype = ScalarType.Float32)
        : base(nameof(Upsample2D))
    {
        conv = new Conv2dLayer(channels, channels, 3, padding: 1, device: device, dtype: dtype);
        RegisterComponents();
    }

    /// <summary>2x; see <see cref="Forward"/>.</summary>
    public override Tensor forward(Tensor input) => Forward(input, null);

    /// <param name="input">[B, C, H, W].</param>
    /// <param name="size">[H', W'] to upsample to; null: 2H x 2W.</param>
    public Tensor Forward(Tensor input, long[]? size)
    {
        var upsampled = size is null
            ? nn.functional.interpolate(input, scale_factor: [2.0, 2.0], mode: InterpolationMode.Nearest)
            : nn.functional.interpolate(input, size: size, mode: InterpolationMode.Nearest);
        return conv.forward(upsampled);
    }
}
