using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistributedInference.Models.Diffusion;

/// <summary>
/// Stable Diffusion's noise predictor (diffusers' <c>UNet2DConditionModel</c>, SD 1.x/2.x features): sinusoidal
/// timestep embedding through <c>time_embedding</c>; <c>conv_in</c>; <c>down_blocks</c> collecting skip connections;
/// <c>mid_block</c>; <c>up_blocks</c> consuming them (upsampling to each skip's size); <c>conv_norm_out</c>, SiLU,
/// <c>conv_out</c>. Parameters are named like the checkpoint's keys
/// (<c>down_blocks.0.attentions.1.transformer_blocks.0.attn2.to_k.weight</c>). Build one with
/// <see cref="StableDiffusionSource"/>.
/// </summary>
public sealed class UNet2DConditionModel : nn.Module<Tensor, Tensor>
{
    private readonly Conv2dLayer conv_in;
    private readonly TimestepEmbedding time_embedding;
    private readonly ModuleList<DownBlock2D> down_blocks;
    private readonly UNetMidBlock2DCrossAttn mid_block;
    private readonly ModuleList<UpBlock2D> up_blocks;
    private readonly GroupNormLayer conv_norm_out;
    private readonly Conv2dLayer conv_out;

    /// <summary>Allocates uninitialised weights on <paramref name="device"/> in <paramref name="dtype"/>; fill them before use.</summary>
    public UNet2DConditionModel(UNet2DConditionConfig config, Device? device = null, ScalarType dtype = ScalarType.Float32)
        : base(nameof(UNet2DConditionModel))
    {
        Config = config;
        var channels = config.BlockOutChannels;
        var blocks = channels.Count;
        var temb = config.TimeEmbeddingDim;
        (int, int, long, bool)? Attention(bool cross, int heads, int layers, int crossDim) =>
            cross ? (heads, layers, crossDim, config.UseLinearProjection) : null;

        conv_in = new Conv2dLayer(config.InChannels, channels[0], config.ConvInKernel, padding: (config.ConvInKernel - 1) / 2, device: device, dtype: dtype);
        time_embedding = new TimestepEmbedding(channels[0], temb, device, dtype);

        var down = new List<DownBlock2D>();
        var skipChannels = new List<long> { channels[0] };
        for (var i = 0; i < blocks; i++)
        {
            var input = i == 0 ? channels[0] : channels[i - 1];
            var last = i == blocks - 1;
            down.Add(new DownBlock2D(
                input, channels[i], config.LayersPerBlock[i], temb, config.NormNumGroups, config.NormEps,
                Attention(config.DownBlocks[i] == "CrossAttnDownBlock2D", config.AttentionHeads[i], config.TransformerLayersPerBlock[i], config.CrossAttentionDim[i]),
                last ? null : config.DownsamplePadding, device, dtype));
            skipChannels.AddRange(Enumerable.Repeat((long)channels[i], config.LayersPerBlock[i]));
            if (!last)
            {
                skipChannels.Add(channels[i]);
            }
        }

        down_blocks = nn.ModuleList(down.ToArray());
        mid_block = new UNetMidBlock2DCrossAttn(
            channels[^1], temb, config.NormNumGroups, config.NormEps, config.MidBlockScaleFactor, config.AttentionHeads[^1],
            config.TransformerLayersPerBlock[^1], config.CrossAttentionDim[^1], config.UseLinearProjection, device, dtype);

        var up = new List<UpBlock2D>();
        var previous = (long)channels[^1];
        for (var i = 0; i < blocks; i++)
        {
            var j = blocks - 1 - i;
            var layers = config.LayersPerBlock[j] + 1;
            var skips = Enumerable.Range(0, layers).Select(_ => { var c = skipChannels[^1]; skipChannels.RemoveAt(skipChannels.Count - 1); return c; }).ToList();
            up.Add(new UpBlock2D(
                previous, channels[j], skips, layers, temb, config.NormNumGroups, config.NormEps,
                Attention(config.UpBlocks[i] == "CrossAttnUpBlock2D", config.AttentionHeads[j], config.TransformerLayersPerBlock[j], config.CrossAttentionDim[j]),
                upsample: i < blocks - 1, device, dtype));
            previous = channels[j];
        }

        up_blocks = nn.ModuleList(up.ToArray());
        conv_norm_out = new GroupNormLayer(config.NormNumGroups, channels[0], config.NormEps, device, dtype);
        conv_out = new Conv2dLayer(channels[0], config.OutChannels, config.ConvOutKernel, padding: (config.ConvOutKernel - 1) / 2, device: device, dtype: dtype);
        RegisterComponents();
    }

    /// <summary>The model's config.</summary>
    public UNet2DConditionConfig Config { get; }

    /// <summary>Not the entry point: the UNet needs a timestep and the text (see <see cref="Forward"/>).</summary>
    public override Tensor forward(Tensor input) => throw new NotSupportedException("UNet2DConditionModel needs a timestep and encoder hidden states: call Forward");

    /// <summary>
    /// One noise prediction, as <c>unet(sample, t, encoder_hidden_states).sample</c> computes it. Each resnet, transformer
    /// and attention frees its own temporaries when it returns (as PyTorch frees them by reference count); the block
    /// outputs and skips land in the caller's dispose scope.
    /// </summary>
    /// <param name="sample">[B, in_channels, h, w] latents in the model's dtype.</param>
    /// <param name="timesteps">[B] or [1] timesteps (int64 or fractional float), broadcast to the batch.</param>
    /// <param name="encoderHiddenStates">[B, S, cross_attention_dim] text embeddings.</param>
    /// <param name="probes">When given, receives intermediate tensors by the fixture's names: t_emb, temb, conv_in,
    /// down_i, mid, up_i, out.</param>
    /// <returns>[B, out_channels, h, w].</returns>
    public Tensor Forward(Tensor sample, Tensor timesteps, Tensor encoderHiddenStates, IDictionary<string, Tensor>? probes = null)
    {
        var batch = sample.shape[0];
        var steps = timesteps.dim() == 0 ? timesteps.reshape(1) : timesteps;
        steps = steps.to(sample.device).expand(batch);
        var sinusoidal = TimestepEmbedding.Sinusoidal(steps, Config.BlockOutChannels[0], Config.FlipSinToCos, Config.FreqShift).to(sample.dtype);
        var timeEmbedding = time_embedding.forward(sinusoidal);
        Probe(probes, "t_emb", sinusoidal);
        Probe(probes, "temb", timeEmbedding);

        var hidden = Config.CenterInputSample ? (2 * sample) - 1.0 : sample;
        hidden = conv_in.forward(hidden);
        Probe(probes, "conv_in", hidden);
        var skips = new List<Tensor> { hidden };
        for (var i = 0; i < down_blocks.Count; i++)
        {
            hidden = down_blocks[i].Forward(hidden, timeEmbedding, encoderHiddenStates, skips);
            Probe(probes, $"down_{i}", hidden);
        }

        hidden = mid_block.Forward(hidden, timeEmbedding, encoderHiddenStates);
        Probe(probes, "mid", hidden);
        for (var i = 0; i < up_blocks.Count; i++)
        {
            var block = up_blocks[i];
            // Each upsampler goes to the size of the skip the next block meets first (diffusers forwards it when the
            // input is not a multiple of the overall factor; otherwise it is exactly 2x).
            var size = i < up_blocks.Count - 1 ? skips[skips.Count - block.ResnetCount - 1].shape[2..] : null;
            hidden = block.Forward(hidden, skips, timeEmbedding, encoderHiddenStates, size);
            Probe(probes, $"up_{i}", hidden);
        }

        hidden = conv_out.forward(nn.functional.silu(conv_norm_out.forward(hidden)));
        Probe(probes, "out", hidden);
        return hidden;
    }

    private static void Probe(IDictionary<string, Tensor>? probes, string name, Tensor value)
    {
        if (probes is not null)
        {
            probes[name] = value.detach().clone();
        }
    }
}
