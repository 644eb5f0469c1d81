using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistributedInference.Models.Diffusion;

/// <summary>
/// Builds the plain layers of the diffusion models with allocated but uninitialised weights (a checkpoint or the seeded
/// initialisation fills them), so that building sd-1.5 costs no random-number work twice.
/// </summary>
internal static class Layers
{
    /// <returns>A Linear with weight [out, in] (and bias [out]), uninitialised.</returns>
    public static Linear Linear(long inputSize, long outputSize, bool bias, Device? device, ScalarType dtype) =>
        nn.Linear(
            new Parameter(empty([outputSize, inputSize], dtype, device), requires_grad: false),
            bias ? new Parameter(empty([outputSize], dtype, device), requires_grad: false) : null);

    /// <summary>diffusers' <c>nn.Dropout</c> slots (<c>to_out.1</c>, <c>ff.net.1</c>): identity at inference.</summary>
    public static nn.Module<Tensor, Tensor> Dropout() => nn.Identity();
}
