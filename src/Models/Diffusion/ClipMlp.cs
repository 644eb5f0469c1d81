using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistributedInference.Models.Diffusion;

/// <summary>CLIP's feed-forward block (transformers' <c>CLIPMLP</c>): <c>fc2(act(fc1(x)))</c>, act from <c>hidden_act</c>.</summary>
public sealed class ClipMlp : nn.Module<Tensor, Tensor>
{
    private readonly Linear fc1;
    private readonly Linear fc2;
    private readonly string _activation;

    public ClipMlp(ClipTextConfig config, Device? device = null, ScalarType dtype = ScalarType.Float32)
        : base(nameof(ClipMlp))
    {
        fc1 = Layers.Linear(config.HiddenSize, config.IntermediateSize, bias: true, device, dtype);
        fc2 = Layers.Linear(config.IntermediateSize, config.HiddenSize, bias: true, device, dtype);
        _activation = config.HiddenAct;
        RegisterComponents();
    }

    /// <param name="input">[B, T, hidden].</param>
    public override Tensor forward(Tensor input) => fc2.forward(Activate(fc1.forward(input)));

    // transformers' ACT2FN: quick_gelu x*sigmoid(1.702x); gelu exact (erf); gelu_new / gelu_pytorch_tanh the tanh form.
    private Tensor Activate(Tensor x) => _activation switch
    {
        "quick_gelu" => x * (x * 1.702).sigmoid(),
        "gelu" => nn.functional.gelu(x),
        _ => 0.5 * x * (1.0 + (Math.Sqrt(2.0 / Math.PI) * (x + (0.044715 * x.pow(3.0)))).tanh()),
    };
}
