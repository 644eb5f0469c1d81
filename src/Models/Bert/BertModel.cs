using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistributedInference.Models.Bert;

/// <summary>
/// transformers' <c>BertModel</c> (encoder only, absolute positions, eval mode): <c>embeddings</c>,
/// <c>encoder.layer.0..N-1</c>, <c>pooler</c> (tanh(dense(hidden at [CLS]))). Parameter names equal the checkpoint's
/// keys without the <c>bert.</c> prefix.
/// </summary>
public sealed class BertModel : nn.Module<Tensor, Tensor>
{
    private readonly BertEmbeddings embeddings;
    private readonly BertEncoder encoder;
    private readonly BertPooler pooler;

    /// <summary>Builds the model of <paramref name="config"/> with uninitialised weights (see <see cref="BertWeights"/>).</summary>
    public BertModel(BertConfig config)
        : base(nameof(BertModel))
    {
        Config = config;
        embeddings = new BertEmbeddings(config);
        encoder = new BertEncoder(config);
        pooler = new BertPooler(config);
        RegisterComponents();
    }

    /// <summary>The hyper-parameters the model was built from.</summary>
    public BertConfig Config { get; }

    internal BertEmbeddings Embeddings => embeddings;

    internal IReadOnlyList<BertLayer> Layers => encoder.Layers;

    /// <summary>The last hidden state [B, T, hidden] of unpadded ids with token type 0.</summary>
    public override Tensor forward(Tensor input) => Forward(input, null, null).LastHiddenState;

    /// <summary>Runs the model (call under <c>no_grad</c> and a dispose scope: the results belong to the caller's scope).</summary>
    /// <param name="inputIds">[B, T] int64 token ids, T at most max_position_embeddings.</param>
    /// <param name="attentionMask">[B, T], 1 for tokens and 0 for padding; null when nothing is padded. Padded
    /// positions are masked as keys; as queries they still get a value (what transformers computes there).</param>
    /// <param name="tokenTypeIds">[B, T] int64 segment ids, or null for all 0.</param>
    /// <param name="outputHiddenStates">Also return every hidden state (embeddings output, then each layer's).</param>
    public BertModelOutput Forward(Tensor inputIds, Tensor? attentionMask, Tensor? tokenTypeIds, bool outputHiddenStates = false)
    {
        var hidden = embeddings.Forward(inputIds, tokenTypeIds);
        var states = outputHiddenStates ? new List<Tensor> { hidden } : null;
        var mask = AdditiveMask(attentionMask, hidden.dtype);
        foreach (var layer in encoder.Layers)
        {
            hidden = layer.Forward(hidden, mask);
            states?.Add(hidden);
        }

        return new BertModelOutput(hidden, pooler.forward(hidden), states);
    }

    /// <summary>
    /// transformers' extended attention mask: [B, T] with 1 = token, 0 = padding becomes [B, 1, 1, T] in
    /// <paramref name="dtype"/>, 0 for tokens and the dtype's minimum for padding, added to the attention scores.
    /// Null stays null.
    /// </summary>
    public static Tensor? AdditiveMask(Tensor? attentionMask, ScalarType dtype)
    {
        if (attentionMask is null)
        {
            return null;
        }

        var padding = attentionMask.eq(0).unsqueeze(1).unsqueeze(1);
        return zeros(padding.shape, dtype, attentionMask.device).masked_fill(padding, finfo(dtype).min);
    }

    /// <summary>Rejects inputs this model cannot embed, before any work.</summary>
    /// <exception cref="InvalidInputException">Ids are not [B, T] integers, T exceeds max_position_embeddings, an id is
    /// outside the vocabulary, or the mask or token types do not match the ids (token types outside type_vocab_size).</exception>
    public static void CheckInput(BertConfig config, Tensor inputIds, Tensor? attentionMask, Tensor? tokenTypeIds)
    {
        if (inputIds.dim() != 2 || inputIds.dtype is not (ScalarType.Int64 or ScalarType.Int32))
        {
            throw new InvalidInputException($"input_ids must be int64 [batch, sequence], got {inputIds.dtype} [{string.Join(", ", inputIds.shape)}]");
        }

        if (inputIds.shape[1] > config.MaxPositions)
        {
            throw new InvalidInputException($"sequence of {inputIds.shape[1]} tokens is longer than max_position_embeddings {config.MaxPositions}");
        }

        foreach (var (name, other) in new[] { ("attention_mask", attentionMask), ("token_type_ids", tokenTypeIds) })
        {
            if (other is not null && !other.shape.SequenceEqual(inputIds.shape))
            {
                throw new InvalidInputException($"{name} is [{string.Join(", ", other.shape)}] but input_ids is [{string.Join(", ", inputIds.shape)}]");
            }
        }

        if (inputIds.NumberOfElements == 0)
        {
            return;
        }

        var (min, max) = (inputIds.min().ToInt64(), inputIds.max().ToInt64());
        if (min < 0 || max >= config.VocabSize)
        {
            throw new InvalidInputException($"token id {(min < 0 ? min : max)} is outside the model's vocabulary [0, {config.VocabSize})");
        }

        if (tokenTypeIds is not null && (tokenTypeIds.min().ToInt64() < 0 || tokenTypeIds.max().ToInt64() >= config.TypeVocabSize))
        {
            throw new InvalidInputException($"token_type_ids must be in [0, {config.TypeVocabSize})");
        }
    }
}

/// <summary>What <see cref="BertModel.Forward"/> returns, as transformers' <c>BaseModelOutputWithPooling</c>.</summary>
/// <param name="LastHiddenState">[B, T, hidden].</param>
/// <param name="PoolerOutput">[B, hidden]: tanh(dense(LastHiddenState[:, 0])).</param>
/// <param name="HiddenStates">When asked for: L + 1 tensors [B, T, hidden], the embeddings output then each layer's.</param>
public sealed record BertModelOutput(Tensor LastHiddenState, Tensor PoolerOutput, IReadOnlyList<Tensor>? HiddenStates);

/// <summary>transformers' <c>BertEncoder</c>: the layers, named <c>layer.i</c>.</summary>
internal sealed class BertEncoder : nn.Module
{
    private readonly ModuleList<BertLayer> layer;

    public BertEncoder(BertConfig config)
        : base(nameof(BertEncoder))
    {
        layer = nn.ModuleList(Enumerable.Range(0, config.LayerCount).Select(_ => new BertLayer(config)).ToArray());
        Layers = [.. layer];
        RegisterComponents();
    }

    public IReadOnlyList<BertLayer> Layers { get; }
}

/// <summary>transformers' <c>BertPooler</c>: tanh(dense(hidden state of the first token)).</summary>
internal sealed class BertPooler : nn.Module<Tensor, Tensor>
{
    private readonly Linear dense;

    public BertPooler(BertConfig config)
        : base(nameof(BertPooler))
    {
        dense = nn.Linear(config.HiddenSize, config.HiddenSize);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input) => tanh(dense.forward(input[.., 0]));
}
