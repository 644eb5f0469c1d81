using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistributedInference.Models.Llama;

/// <summary>
/// Builds <see cref="Linear"/> layers whose weights are allocated but not initialised: a checkpoint or the seeded
/// initialisation fills them, so building a large model costs no random-number work twice.
/// </summary>
public static class LlamaLinear
{
    /// <returns>A Linear with weight [out, in] (and bias [out] when <paramref name="bias"/>), uninitialised.</returns>
    public static Linear Create(long inputSize, long outputSize, bool bias, Device? device, ScalarType dtype) =>
        nn.Linear(
            new Parameter(empty([outputSize, inputSize], dtype, device), requires_grad: false),
            bias ? new Parameter(empty([outputSize], dtype, device), requires_grad: false) : null);
}
