using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistributedInference.Models.Diffusion;

/// <summary><c>nn.GroupNorm(groups, channels, eps, affine=True)</c> over [B, C, ...], weights uninitialised.</summary>
public sealed class GroupNormLayer : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly Parameter bias;
    private readonly long _groups;
    private readonly double _eps;

    public GroupNormLayer(long groups, long channels, double eps, Device? device = null, ScalarType dtype = ScalarType.Float32)
        : base(nameof(GroupNormLayer))
    {
        weight = new Parameter(empty([channels], dtype, device), requires_grad: false);
        bias = new Parameter(empty([channels], dtype, device), requires_grad: false);
        _groups = groups;
        _eps = eps;
        RegisterComponents();
    }

    /// <param name="input">[B, C, ...].</param>
    public override Tensor forward(Tensor input) => nn.functional.group_norm(input, _groups, weight, bias, _eps);
}
