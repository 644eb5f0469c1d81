using static TorchSharp.torch;

namespace DistributedInference.Models.Diffusion;

/// <summary>
/// Stable Diffusion's VAE (diffusers' <c>AutoencoderKL</c>): <c>encoder</c> + <c>quant_conv</c> give the latent
/// distribution's moments (image-to-image starts there); <c>post_quant_conv</c> + <c>decoder</c> turn latents into images.
/// Parameters are named like the checkpoint's keys (<c>decoder.mid_block.attentions.0.to_q.weight</c>). Build one with
/// <see cref="StableDiffusionSource"/>.
/// </summary>
public sealed class AutoencoderKL : nn.Module<Tensor, Tensor>
{
    private readonly VaeEncoder encoder;
    private readonly VaeDecoder decoder;
    private readonly Conv2dLayer? quant_conv;
    private readonly Conv2dLayer? post_quant_conv;

    /// <summary>Allocates uninitialised weights on <paramref name="device"/> in <paramref name="dtype"/>; fill them before use.</summary>
    public AutoencoderKL(AutoencoderKLConfig config, Device? device = null, ScalarType dtype = ScalarType.Float32)
        : base(nameof(AutoencoderKL))
    {
        Config = config;
        encoder = new VaeEncoder(config, device, dtype);
        decoder = new VaeDecoder(config, device, dtype);
        if (config.UseQuantConv)
        {
            quant_conv = new Conv2dLayer(2 * config.LatentChannels, 2 * config.LatentChannels, 1, device: device, dtype: dtype);
        }

        if (config.UsePostQuantConv)
        {
            post_quant_conv = new Conv2dLayer(config.LatentChannels, config.LatentChannels, 1, device: device, dtype: dtype);
        }

        RegisterComponents();
    }

    /// <summary>The model's config.</summary>
    public AutoencoderKLConfig Config { get; }

    /// <summary>See <see cref="Decode"/>.</summary>
    public override Tensor forward(Tensor input) => Decode(input);

    /// <summary><c>vae.decode(z).sample</c>. Opens no dispose scope.</summary>
    /// <param name="latents">[B, latent_channels, h, w], already divided by the scaling factor.</param>
    /// <param name="probes">When given, receives dec_mid and dec_up_i.</param>
    /// <returns>[B, out_channels, h x f, w x f] images, about [-1, 1].</returns>
    public Tensor Decode(Tensor latents, IDictionary<string, Tensor>? probes = null) =>
        decoder.Forward(post_quant_conv?.forward(latents) ?? latents, probes);

    /// <summary>
    /// The moments of <c>vae.encode(x).latent_dist</c>: <c>quant_conv(encoder(x))</c>, mean in the first latent_channels
    /// channels, log-variance in the rest. Opens no dispose scope.
    /// </summary>
    /// <param name="images">[B, in_channels, H, W] in [-1, 1], H and W multiples of the scale factor.</param>
    /// <returns>[B, 2 x latent_channels, H / f, W / f].</returns>
    public Tensor EncodeMoments(Tensor images)
    {
        var moments = encoder.forward(images);
        return quant_conv?.forward(moments) ?? moments;
    }
}
