using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistributedInference.Models.Diffusion;

/// <summary>
/// A down block of the UNet or of the VAE encoder: diffusers' <c>CrossAttnDownBlock2D</c> (each resnet followed by a
/// <see cref="Transformer2DModel"/>), <c>DownBlock2D</c> (resnets only) and <c>DownEncoderBlock2D</c> (resnets without time
/// embedding), then an optional stride-2 <c>downsamplers.0</c>. Each resnet(+attention) output and the downsampled
/// output are the block's skip connections.
/// </summary>
public sealed class DownBlock2D : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<ResnetBlock2D> resnets;
    private readonly ModuleList<Transformer2DModel>? attentions;
    private readonly ModuleList<Downsample2D>? downsamplers;

    /// <param name="layers">Resnets (layers_per_block).</param>
    /// <param name="timeEmbeddingChannels">Width of the UNet's time embedding; null in the VAE.</param>
    /// <param name="attention">(heads, transformer layers, cross_attention_dim, use_linear_projection) for a cross-attention block; null for none.</param>
    /// <param name="downsamplePadding">Padding of the downsampler; null: no downsampler (the last block).</param>
    public DownBlock2D(long inChannels, long outChannels, int layers, long? timeEmbeddingChannels, int groups, double eps,
        (int Heads, int Layers, long CrossAttentionDim, bool Linear)? attention, long? downsamplePadding, Device? device = null, ScalarType dtype = ScalarType.Float32)
        : base(nameof(DownBlock2D))
    {
        resnets = nn.ModuleList(Enumerable.Range(0, layers)
            .Select(i => new ResnetBlock2D(i == 0 ? inChannels : outChannels, outChannels, timeEmbeddingChannels, groups, eps, device: device, dtype: dtype)).ToArray());
        if (attention is { } a)
        {
            attentions = nn.ModuleList(Enumerable.Range(0, layers)
                .Select(_ => new Transformer2DModel(outChannels, a.Heads, a.Layers, a.CrossAttentionDim, groups, a.Linear, device, dtype)).ToArray());
        }

        if (downsamplePadding is { } padding)
        {
            downsamplers = nn.ModuleList(new Downsample2D(outChannels, padding, device, dtype));
        }

        RegisterComponents();
    }

    /// <summary>The VAE encoder's form (no time embedding, no text); see <see cref="Forward"/>.</summary>
    public override Tensor forward(Tensor input) => Forward(input, null, null, null);

    /// <param name="input">[B, in, H, W].</param>
    /// <param name="timeEmbedding">[B, temb], or null in the VAE.</param>
    /// <param name="context">[B, S, cross_attention_dim] for a cross-attention block.</param>
    /// <param name="skips">When given, receives each skip connection in order.</param>
    /// <returns>[B, out, H', W'].</returns>
    public Tensor Forward(Tensor input, Tensor? timeEmbedding, Tensor? context, List<Tensor>? skips)
    {
        var hidden = input;
        for (var i = 0; i < resnets.Count; i++)
        {
            hidden = resnets[i].Forward(hidden, timeEmbedding);
            if (attentions is not null)
            {
                hidden = attentions[i].forward(hidden, context!);
            }

            skips?.Add(hidden);
        }

        if (downsamplers is not null)
        {
            hidden = downsamplers[0].forward(hidden);
            skips?.Add(hidden);
        }

        return hidden;
    }
}
