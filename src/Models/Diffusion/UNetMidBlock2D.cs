using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistributedInference.Models.Diffusion;

/// <summary>
/// The VAE's middle block (diffusers' <c>UNetMidBlock2D</c> without time embedding, eps 1e-6): <c>resnets.0</c>, then
/// <c>attentions.0</c> (one head over all channels, with its GroupNorm and residual; left out when
/// <c>mid_block_add_attention</c> is false) and <c>resnets.1</c>.
/// </summary>
public sealed class UNetMidBlock2D : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<Attention>? attentions;
    private readonly ModuleList<ResnetBlock2D> resnets;

    public UNetMidBlock2D(long channels, int groups, bool addAttention, Device? device = null, ScalarType dtype = ScalarType.Float32)
        : base(nameof(UNetMidBlock2D))
    {
        if (addAttention)
        {
            attentions = nn.ModuleList(new Attention(channels, null, 1, (int)channels, bias: true, (groups, 1e-6), device, dtype));
        }

        resnets = nn.ModuleList(Enumerable.Range(0, 2).Select(_ => new ResnetBlock2D(channels, channels, null, groups, 1e-6, 1.0, device, dtype)).ToArray());
        RegisterComponents();
    }

    /// <param name="input">[B, C, H, W].</param>
    public override Tensor forward(Tensor input)
    {
        var hidden = resnets[0].forward(input);
        if (attentions is not null)
        {
            hidden = attentions[0].forward(hidden);
        }

        return resnets[1].forward(hidden);
    }
}
