using DistributedInference.Models.Kernels;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistributedInference.Models.Gpt2;

/// <summary>
/// GPT-2's linear layer (transformers' <c>Conv1D</c>): y = x·W + b with <c>weight</c> [in, out] (the transpose of
/// <c>nn.Linear</c>'s), as checkpoints store it, and <c>bias</c> [out].
/// </summary>
/// <remarks>
/// The parameter is a transposed view of [out, in] row-major memory (strides 1, in), so the same memory is an
/// <c>nn.Linear</c> weight: a decode step's few rows run on <see cref="SkinnyLinear"/> (bit-identical for a row in any
/// batch, and faster than libtorch's matrix multiply for few rows), everything else on libtorch's <c>linear</c>, which
/// multiplies by the view without a copy. Loading and the random initialisation copy into the view; <c>to(dtype)</c> and
/// <c>to(device)</c> keep its strides. Were the layout lost (a contiguous [in, out] parameter), forward is still right,
/// through libtorch.
/// </remarks>
public sealed class Conv1D : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly Parameter bias;

    public Conv1D(long inFeatures, long outFeatures)
        : base(nameof(Conv1D))
    {
        using var rows = empty(outFeatures, inFeatures);
        weight = new Parameter(rows.t(), requires_grad: false);
        bias = new Parameter(zeros(outFeatures), requires_grad: false);
        RegisterComponents();
    }

    /// <param name="input">[..., in].</param>
    /// <returns>[..., out], owned by the caller.</returns>
    public override Tensor forward(Tensor input)
    {
        using var rows = weight.t();
        return SkinnyLinear.Linear(input, rows, bias);
    }
}
