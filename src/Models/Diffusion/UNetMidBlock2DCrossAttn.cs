using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistributedInference.Models.Diffusion;

/// <summary>
/// The UNet's middle block (diffusers' <c>UNetMidBlock2DCrossAttn</c>, one layer as Stable Diffusion builds it):
/// <c>resnets.0</c>, then <c>attentions.0</c> (a <see cref="Transformer2DModel"/> on the text) and <c>resnets.1</c>.
/// </summary>
public sealed class UNetMidBlock2DCrossAttn : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<Transformer2DModel> attentions;
    private readonly ModuleList<ResnetBlock2D> resnets;

    public UNetMidBlock2DCrossAttn(long channels, long timeEmbeddingChannels, int groups, double eps, double outputScaleFactor,
        int heads, int transformerLayers, long crossAttentionDim, bool linearProjection, Device? device = null, ScalarType dtype = ScalarType.Float32)
        : base(nameof(UNetMidBlock2DCrossAttn))
    {
        attentions = nn.ModuleList(new Transformer2DModel(channels, heads, transformerLayers, crossAttentionDim, groups, linearProjection, device, dtype));
        resnets = nn.ModuleList(Enumerable.Range(0, 2).Select(_ => new ResnetBlock2D(channels, channels, timeEmbeddingChannels, groups, eps, outputScaleFactor, device, dtype)).ToArray());
        RegisterComponents();
    }

    /// <summary>Not the entry point: the block needs the time embedding and the text (see <see cref="Forward"/>).</summary>
    public override Tensor forward(Tensor input) => throw new NotSupportedException("UNetMidBlock2DCrossAttn needs the time embedding and the text: call Forward");

    /// <param name="input">[B, C, H, W].</param>
    /// <param name="timeEmbedding">[B, temb].</param>
    /// <param name="context">[B, S, cross_attention_dim].</param>
    public Tensor Forward(Tensor input, Tensor timeEmbedding, Tensor context)
    {
        var hidden = resnets[0].Forward(input, timeEmbedding);
        hidden = attentions[0].forward(hidden, context);
        return resnets[1].Forward(hidden, timeEmbedding);
    }
}
