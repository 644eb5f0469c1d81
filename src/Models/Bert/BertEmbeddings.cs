using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistributedInference.Models.Bert;

/// <summary>
/// transformers' <c>BertEmbeddings</c> with absolute positions: word + position + token-type embeddings, then
/// LayerNorm (dropout is an identity at inference).
/// </summary>
public sealed class BertEmbeddings : nn.Module<Tensor, Tensor>
{
    private readonly Embedding word_embeddings;
    private readonly Embedding position_embeddings;
    private readonly Embedding token_type_embeddings;
    private readonly LayerNorm LayerNorm;

    /// <summary>Builds the embeddings of <paramref name="config"/> with uninitialised weights.</summary>
    public BertEmbeddings(BertConfig config)
        : base(nameof(BertEmbeddings))
    {
        word_embeddings = nn.Embedding(config.VocabSize, config.HiddenSize);
        position_embeddings = nn.Embedding(config.MaxPositions, config.HiddenSize);
        token_type_embeddings = nn.Embedding(config.TypeVocabSize, config.HiddenSize);
        LayerNorm = nn.LayerNorm(config.HiddenSize, config.LayerNormEpsilon);
        RegisterComponents();
    }

    /// <summary>Embeds ids with token type 0 everywhere.</summary>
    public override Tensor forward(Tensor input) => Forward(input, null);

    /// <param name="inputIds">[B, T] int64 token ids.</param>
    /// <param name="tokenTypeIds">[B, T] int64 segment ids, or null for all 0.</param>
    /// <returns>[B, T, hidden] in the module's dtype: hidden state 0.</returns>
    public Tensor Forward(Tensor inputIds, Tensor? tokenTypeIds)
    {
        var positions = arange(inputIds.shape[1], ScalarType.Int64, inputIds.device).unsqueeze(0);
        var types = tokenTypeIds ?? zeros_like(inputIds, ScalarType.Int64);
        var sum = word_embeddings.forward(inputIds) + position_embeddings.forward(positions) + token_type_embeddings.forward(types);
        return LayerNorm.forward(sum);
    }
}
