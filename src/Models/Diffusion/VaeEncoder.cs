using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistributedInference.Models.Diffusion;

/// <summary>
/// The VAE's encoder (diffusers' <c>Encoder</c>, double_z): <c>conv_in</c>, <c>down_blocks</c> (DownEncoderBlock2D,
/// stride-2 downsamplers padded bottom-right), <c>mid_block</c>, <c>conv_norm_out</c>, SiLU, <c>conv_out</c> to
/// 2 x latent_channels (mean and log-variance). Every GroupNorm uses eps 1e-6.
/// </summary>
public sealed class VaeEncoder : nn.Module<Tensor, Tensor>
{
    private readonly Conv2dLayer conv_in;
    private readonly ModuleList<DownBlock2D> down_blocks;
    private readonly UNetMidBlock2D mid_block;
    private readonly GroupNormLayer conv_norm_out;
    private readonly Conv2dLayer conv_out;

    public VaeEncoder(AutoencoderKLConfig config, Device? device = null, ScalarType dtype = ScalarType.Float32)
        : base(nameof(VaeEncoder))
    {
        var channels = config.BlockOutChannels;
        conv_in = new Conv2dLayer(config.InChannels, channels[0], 3, padding: 1, device: device, dtype: dtype);
        down_blocks = nn.ModuleList(Enumerable.Range(0, channels.Count).Select(i => new DownBlock2D(
            i == 0 ? channels[0] : channels[i - 1], channels[i], config.LayersPerBlock, null, config.NormNumGroups, 1e-6, null,
            i == channels.Count - 1 ? null : 0, device, dtype)).ToArray());
        mid_block = new UNetMidBlock2D(channels[^1], config.NormNumGroups, config.MidBlockAddAttention, device, dtype);
        conv_norm_out = new GroupNormLayer(config.NormNumGroups, channels[^1], 1e-6, device, dtype);
        conv_out = new Conv2dLayer(channels[^1], 2 * config.LatentChannels, 3, padding: 1, device: device, dtype: dtype);
        RegisterComponents();
    }

    /// <param name="input">[B, in_channels, H, W] images in [-1, 1].</param>
    /// <returns>[B, 2 x latent_channels, H / f, W / f].</returns>
    public override Tensor forward(Tensor input)
    {
        var hidden = conv_in.forward(input);
        foreach (var block in down_blocks)
        {
            hidden = block.forward(hidden);
        }

        hidden = mid_block.forward(hidden);
        return conv_out.forward(nn.functional.silu(conv_norm_out.forward(hidden)));
    }
}
