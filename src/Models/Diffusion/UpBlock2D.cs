using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistributedInference.Models.Diffusion;

/// <summary>
/// An up block of the UNet or of the VAE decoder: diffusers' <c>CrossAttnUpBlock2D</c> and <c>UpBlock2D</c> (each resnet
/// takes <c>cat([h, skip], dim=1)</c> with the latest skip connection, the cross-attention block follows each with a
/// <see cref="Transformer2DModel"/>) and <c>UpDecoderBlock2D</c> (no skips, no time embedding), then an optional
/// nearest-upsampling <c>upsamplers.0</c>.
/// </summary>
public sealed class UpBlock2D : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<Transformer2DModel>? attentions;
    private readonly ModuleList<ResnetBlock2D> resnets;
    private readonly ModuleList<Upsample2D>? upsamplers;

    /// <param name="inputChannels">Input channels of the first resnet (prev_output_channel).</param>
    /// <param name="outChannels">Output channels.</param>
    /// <param name="skipChannels">Channels of the skip each resnet concatenates, in order; null for the VAE decoder.</param>
    /// <param name="layers">Resnets (layers_per_block + 1).</param>
    /// <param name="attention">As for <see cref="DownBlock2D"/>.</param>
    /// <param name="upsample">Whether the block ends with an upsampler.</param>
    public UpBlock2D(long inputChannels, long outChannels, IReadOnlyList<long>? skipChannels, int layers, long? timeEmbeddingChannels, int groups, double eps,
        (int Heads, int Layers, long CrossAttentionDim, bool Linear)? attention, bool upsample, Device? device = null, ScalarType dtype = ScalarType.Float32)
        : base(nameof(UpBlock2D))
    {
        if (attention is { } a)
        {
            attentions = nn.ModuleList(Enumerable.Range(0, layers)
                .Select(_ => new Transformer2DModel(outChannels, a.Heads, a.Layers, a.CrossAttentionDim, groups, a.Linear, device, dtype)).ToArray());
        }

        resnets = nn.ModuleList(Enumerable.Range(0, layers)
            .Select(i => new ResnetBlock2D((i == 0 ? inputChannels : outChannels) + (skipChannels?[i] ?? 0), outChannels, timeEmbeddingChannels, groups, eps, device: device, dtype: dtype)).ToArray());
        if (upsample)
        {
            upsamplers = nn.ModuleList(new Upsample2D(outChannels, device, dtype));
        }

        RegisterComponents();
    }

    /// <summary>Resnets in this block: the number of skips it takes.</summary>
    public int ResnetCount => resnets.Count;

    /// <summary>The VAE decoder's form (no skips, no time embedding, no text); see <see cref="Forward"/>.</summary>
    public override Tensor forward(Tensor input) => Forward(input, null, null, null, null);

    /// <param name="input">[B, in, H, W].</param>
    /// <param name="skips">The UNet's skip connections; this block takes (and removes) the last <see cref="ResnetCount"/>.</param>
    /// <param name="timeEmbedding">[B, temb], or null in the VAE.</param>
    /// <param name="context">[B, S, cross_attention_dim] for a cross-attention block.</param>
    /// <param name="upsampleSize">[H', W'] for the upsampler; null: 2x.</param>
    public Tensor Forward(Tensor input, List<Tensor>? skips, Tensor? timeEmbedding, Tensor? context, long[]? upsampleSize)
    {
        var hidden = input;
        for (var i = 0; i < resnets.Count; i++)
        {
            // Each layer's concatenation and intermediate output are freed once the next layer has its input.
            using var layer = NewDisposeScope();
            if (skips is not null)
            {
                hidden = cat([hidden, skips[^1]], 1);
                skips.RemoveAt(skips.Count - 1);
            }

            hidden = resnets[i].Forward(hidden, timeEmbedding);
            if (attentions is not null)
            {
                hidden = attentions[i].forward(hidden, context!);
            }

            hidden = hidden.MoveToOuterDisposeScope();
        }

        return upsamplers is null ? hidden : upsamplers[0].Forward(hidden, upsampleSize);
    }
}
