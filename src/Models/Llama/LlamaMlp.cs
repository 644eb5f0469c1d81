using DistributedInference.Models.Kernels;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistributedInference.Models.Llama;

/// <summary>The SwiGLU feed-forward block (transformers' <c>LlamaMLP</c>): <c>down(silu(gate(x)) * up(x))</c>.</summary>
public sealed class LlamaMlp : nn.Module<Tensor, Tensor>
{
    private readonly Linear gate_proj;
    private readonly Linear up_proj;
    private readonly Linear down_proj;

    /// <summary>Allocates uninitialised weights on <paramref name="device"/> in <paramref name="dtype"/>.</summary>
    public LlamaMlp(LlamaConfig config, Device? device = null, ScalarType dtype = ScalarType.Float32)
        : base(nameof(LlamaMlp))
    {
        gate_proj = LlamaLinear.Create(config.HiddenSize, config.IntermediateSize, config.MlpBias, device, dtype);
        up_proj = LlamaLinear.Create(config.HiddenSize, config.IntermediateSize, config.MlpBias, device, dtype);
        down_proj = LlamaLinear.Create(config.IntermediateSize, config.HiddenSize, config.MlpBias, device, dtype);
        RegisterComponents();
    }

    /// <param name="input">[B, T, hidden].</param>
    /// <returns>[B, T, hidden].</returns>
    public override Tensor forward(Tensor input) =>
        down_proj.Apply(nn.functional.silu(gate_proj.Apply(input)) * up_proj.Apply(input));
}
