using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistributedInference.Models.Diffusion;

/// <summary>
/// diffusers' <c>FeedForward</c> with GEGLU, as the UNet's transformer blocks use it: <c>net.0.proj</c> Linear(dim, 2 x
/// inner), split in halves (hidden, gate) along the last dimension, <c>hidden * gelu(gate)</c> (exact GELU),
/// <c>net.1</c> dropout, <c>net.2</c> Linear(inner, dim); inner = 4 x dim.
/// </summary>
public sealed class FeedForward : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<nn.Module<Tensor, Tensor>> net;

    public FeedForward(long dim, Device? device = null, ScalarType dtype = ScalarType.Float32)
        : base(nameof(FeedForward))
    {
        var inner = dim * 4;
        net = nn.ModuleList<nn.Module<Tensor, Tensor>>(new Geglu(dim, inner, device, dtype), Layers.Dropout(), Layers.Linear(inner, dim, bias: true, device, dtype));
        RegisterComponents();
    }

    /// <param name="input">[B, N, dim].</param>
    public override Tensor forward(Tensor input) => net[2].forward(net[0].forward(input));

    /// <summary>diffusers' <c>GEGLU</c>: <c>proj</c>, then hidden * gelu(gate).</summary>
    private sealed class Geglu : nn.Module<Tensor, Tensor>
    {
        private readonly Linear proj;

        public Geglu(long dim, long inner, Device? device, ScalarType dtype)
            : base(nameof(Geglu))
        {
            proj = Layers.Linear(dim, inner * 2, bias: true, device, dtype);
            RegisterComponents();
        }

        public override Tensor forward(Tensor input)
        {
            var halves = proj.forward(input).chunk(2, -1);
            return halves[0] * nn.functional.gelu(halves[1]);
        }
    }
}
