using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistributedInference.Models.Bert;

/// <summary>
/// transformers' <c>BertLayer</c> (post-norm): self-attention with biases, <c>attention.output</c> dense + dropout +
/// LayerNorm on the residual, <c>intermediate</c> dense + activation, <c>output</c> dense + LayerNorm on the residual.
/// </summary>
public sealed class BertLayer : nn.Module<Tensor, Tensor>
{
    private readonly BertAttention attention;
    private readonly BertIntermediate intermediate;
    private readonly BertOutput output;

    /// <summary>Builds one encoder layer of <paramref name="config"/> with uninitialised weights.</summary>
    public BertLayer(BertConfig config)
        : base(nameof(BertLayer))
    {
        attention = new BertAttention(config);
        intermediate = new BertIntermediate(config);
        output = new BertOutput(config);
        RegisterComponents();
    }

    /// <summary>Runs the layer with every position visible.</summary>
    public override Tensor forward(Tensor input) => Forward(input, null);

    /// <param name="hidden">[B, T, hidden].</param>
    /// <param name="additiveMask">[B, 1, 1, T] in the hidden state's dtype: 0 where a key is a token, the dtype's
    /// minimum where it is padding (see <see cref="BertModel.AdditiveMask"/>); null when nothing is padded.</param>
    /// <returns>[B, T, hidden].</returns>
    public Tensor Forward(Tensor hidden, Tensor? additiveMask)
    {
        var attended = attention.Forward(hidden, additiveMask);
        return output.Forward(intermediate.forward(attended), attended);
    }
}

/// <summary>transformers' <c>BertSelfAttention</c>: query, key and value projections with biases, softmax attention.</summary>
internal sealed class BertSelfAttention : nn.Module<Tensor, Tensor>
{
    private readonly Linear query;
    private readonly Linear key;
    private readonly Linear value;
    private readonly int _heads;
    private readonly int _headSize;

    public BertSelfAttention(BertConfig config)
        : base(nameof(BertSelfAttention))
    {
        _heads = config.HeadCount;
        _headSize = config.HeadSize;
        query = nn.Linear(config.HiddenSize, config.HiddenSize);
        key = nn.Linear(config.HiddenSize, config.HiddenSize);
        value = nn.Linear(config.HiddenSize, config.HiddenSize);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input) => Forward(input, null);

    public Tensor Forward(Tensor hidden, Tensor? additiveMask)
    {
        var (batch, steps) = (hidden.shape[0], hidden.shape[1]);
        var q = Heads(query.forward(hidden), batch, steps);
        var k = Heads(key.forward(hidden), batch, steps);
        var v = Heads(value.forward(hidden), batch, steps);
        var attended = nn.functional.scaled_dot_product_attention(q, k, v, additiveMask, 0.0, false);
        return attended.transpose(1, 2).reshape(batch, steps, _heads * _headSize);
    }

    private Tensor Heads(Tensor x, long batch, long steps) => x.view(batch, steps, _heads, _headSize).transpose(1, 2);
}

/// <summary>transformers' <c>BertSelfOutput</c>: dense, then LayerNorm of it plus the layer's input.</summary>
internal sealed class BertSelfOutput : nn.Module<Tensor, Tensor>
{
    private readonly Linear dense;
    private readonly LayerNorm LayerNorm;

    public BertSelfOutput(BertConfig config)
        : base(nameof(BertSelfOutput))
    {
        dense = nn.Linear(config.HiddenSize, config.HiddenSize);
        LayerNorm = nn.LayerNorm(config.HiddenSize, config.LayerNormEpsilon);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input) => Forward(input, input);

    public Tensor Forward(Tensor hidden, Tensor residual) => LayerNorm.forward(dense.forward(hidden) + residual);
}

/// <summary>transformers' <c>BertAttention</c>: <c>self</c> then <c>output</c>.</summary>
internal sealed class BertAttention : nn.Module<Tensor, Tensor>
{
    private readonly BertSelfAttention self;
    private readonly BertSelfOutput output;

    public BertAttention(BertConfig config)
        : base(nameof(BertAttention))
    {
        self = new BertSelfAttention(config);
        output = new BertSelfOutput(config);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input) => Forward(input, null);

    public Tensor Forward(Tensor hidden, Tensor? additiveMask) => output.Forward(self.Forward(hidden, additiveMask), hidden);
}

/// <summary>transformers' <c>BertIntermediate</c>: dense to intermediate_size, then hidden_act.</summary>
internal sealed class BertIntermediate : nn.Module<Tensor, Tensor>
{
    private readonly Linear dense;
    private readonly string _activation;

    public BertIntermediate(BertConfig config)
        : base(nameof(BertIntermediate))
    {
        _activation = config.Activation;
        dense = nn.Linear(config.HiddenSize, config.IntermediateSize);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        var x = dense.forward(input);
        return _activation switch
        {
            "gelu" => nn.functional.gelu(x),
            "gelu_new" or "gelu_pytorch_tanh" => nn.functional.gelu(x, GELU.Approximate.tanh, false),
            "relu" => nn.functional.relu(x),
            _ => nn.functional.silu(x),
        };
    }
}

/// <summary>transformers' <c>BertOutput</c>: dense back to hidden_size, then LayerNorm of it plus the attention output.</summary>
internal sealed class BertOutput : nn.Module<Tensor, Tensor>
{
    private readonly Linear dense;
    private readonly LayerNorm LayerNorm;

    public BertOutput(BertConfig config)
        : base(nameof(BertOutput))
    {
        dense = nn.Linear(config.IntermediateSize, config.HiddenSize);
        LayerNorm = nn.LayerNorm(config.HiddenSize, config.LayerNormEpsilon);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input) => throw new NotSupportedException("BertOutput needs the residual: call Forward");

    public Tensor Forward(Tensor hidden, Tensor residual) => LayerNorm.forward(dense.forward(hidden) + residual);
}
