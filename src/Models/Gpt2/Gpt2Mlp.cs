using static TorchSharp.torch;

namespace DistributedInference.Models.Gpt2;

/// <summary>GPT-2's feed-forward layer: expand, activate, project back.</summary>
public sealed class Gpt2Mlp : nn.Module<Tensor, Tensor>
{
    private readonly Conv1D c_fc;
    private readonly Conv1D c_proj;
    private readonly string _activation;

    public Gpt2Mlp(Gpt2Config config)
        : base(nameof(Gpt2Mlp))
    {
        _activation = config.Activation;
        c_fc = new Conv1D(config.EmbeddingSize, config.InnerSize);
        c_proj = new Conv1D(config.InnerSize, config.EmbeddingSize);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input) => c_proj.forward(Activate(c_fc.forward(input)));

    private Tensor Activate(Tensor x) => _activation switch
    {
        "gelu" => nn.functional.gelu(x),
        "relu" => nn.functional.relu(x),
        _ => nn.functional.gelu(x, TorchSharp.Modules.GELU.Approximate.tanh, false),
    };
}
