using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistributedInference.Models.Diffusion;

/// <summary>
/// The VAE's decoder (diffusers' <c>Decoder</c>): <c>conv_in</c> from the latents, <c>mid_block</c>, <c>up_blocks</c>
/// (UpDecoderBlock2D, layers_per_block + 1 resnets, nearest 2x upsampling but in the last), <c>conv_norm_out</c>, SiLU,
/// <c>conv_out</c>. Every GroupNorm uses eps 1e-6.
/// </summary>
public sealed class VaeDecoder : nn.Module<Tensor, Tensor>
{
    private readonly Conv2dLayer conv_in;
    private readonly UNetMidBlock2D mid_block;
    private readonly ModuleList<UpBlock2D> up_blocks;
    private readonly GroupNormLayer conv_norm_out;
    private readonly Conv2dLayer conv_out;

    public VaeDecoder(AutoencoderKLConfig config, Device? device = null, ScalarType dtype = ScalarType.Float32)
        : base(nameof(VaeDecoder))
    {
        var reversed = config.BlockOutChannels.Reverse().ToList();
        conv_in = new Conv2dLayer(config.LatentChannels, reversed[0], 3, padding: 1, device: device, dtype: dtype);
        mid_block = new UNetMidBlock2D(reversed[0], config.NormNumGroups, config.MidBlockAddAttention, device, dtype);
        up_blocks = nn.ModuleList(Enumerable.Range(0, reversed.Count).Select(i => new UpBlock2D(
            i == 0 ? reversed[0] : reversed[i - 1], reversed[i], null, config.LayersPerBlock + 1, null, config.NormNumGroups, 1e-6, null,
            upsample: i < reversed.Count - 1, device, dtype)).ToArray());
        conv_norm_out = new GroupNormLayer(config.NormNumGroups, reversed[^1], 1e-6, device, dtype);
        conv_out = new Conv2dLayer(reversed[^1], config.OutChannels, 3, padding: 1, device: device, dtype: dtype);
        RegisterComponents();
    }

    /// <summary>See <see cref="Forward"/>.</summary>
    public override Tensor forward(Tensor input) => Forward(input);

    /// <param name="input">[B, latent_channels, h, w] (after post_quant_conv).</param>
    /// <param name="probes">When given, receives dec_mid and dec_up_i (the fixture's names).</param>
    /// <returns>[B, out_channels, h x f, w x f], about [-1, 1].</returns>
    public Tensor Forward(Tensor input, IDictionary<string, Tensor>? probes = null)
    {
        var hidden = mid_block.forward(conv_in.forward(input));
        if (probes is not null)
        {
            probes["dec_mid"] = hidden.detach().clone();
        }

        for (var i = 0; i < up_blocks.Count; i++)
        {
            hidden = up_blocks[i].forward(hidden);
            if (probes is not null)
            {
                probes[$"dec_up_{i}"] = hidden.detach().clone();
            }
        }

        return conv_out.forward(nn.functional.silu(conv_norm_out.forward(hidden)));
    }
}
