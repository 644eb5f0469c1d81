using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistributedInference.Models.Gpt2;

/// <summary>GPT-2's linear layer, which stores its weight as [in, out] (the transpose of <c>nn.Linear</c>).</summary>
public sealed class Conv1D : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly Parameter bias;

    public Conv1D(long inFeatures, long outFeatures)
        : base(nameof(Conv1D))
    {
        weight = new Parameter(empty(inFeatures, outFeatures), requires_grad: false);
        bias = new Parameter(zeros(outFeatures), requires_grad: false);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        var shape = input.shape;
        shape[^1] = weight.shape[1];
        return addmm(bias, input.reshape(-1, weight.shape[0]), weight, 1, 1).view(shape);
    }
}
