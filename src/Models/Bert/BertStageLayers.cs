using DistributedInference.Models.Staging;
using static TorchSharp.torch;

namespace DistributedInference.Models.Bert;

/// <summary>
/// <c>embeddings</c>: token ids (the batch's <see cref="StagedBatch.InputIds"/>) to hidden state 0 [B, T, hidden],
/// with token type 0 everywhere (sentence-transformers' single sentences).
/// </summary>
public sealed class BertEmbeddingLayer : StageLayer
{
    private readonly BertEmbeddings embeddings;

    internal BertEmbeddingLayer(BertConfig config)
        : base("embeddings")
    {
        embeddings = new BertEmbeddings(config);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override StagedBatch forward(StagedBatch input) => input with { Hidden = embeddings.Forward(input.InputIds, null) };
}

/// <summary><c>encoder.layer.i</c>: one encoder layer, [B, T, hidden] to [B, T, hidden], padding masked as keys.</summary>
public sealed class BertEncoderLayer : StageLayer
{
    private readonly BertLayer layer;

    internal BertEncoderLayer(int index, BertConfig config)
        : base($"encoder.layer.{index}")
    {
        layer = new BertLayer(config);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override StagedBatch forward(StagedBatch input) =>
        input with { Hidden = layer.Forward(input.Hidden, BertModel.AdditiveMask(input.AttentionMask, input.Hidden.dtype)) };
}

/// <summary>
/// <c>pooler</c>: sentence-transformers' Pooling (and Normalize when configured) of the last hidden state,
/// [B, T, hidden] to [B, modes x hidden] in the stage's dtype. It holds no parameters (BERT's own pooler dense is
/// not part of a sentence embedding).
/// </summary>
public sealed class BertPoolingLayer : StageLayer
{
    private readonly SentencePooling _pooling;
    private readonly bool _normalize;

    internal BertPoolingLayer(SentenceTransformerConfig settings)
        : base("pooler")
    {
        _pooling = settings.Pooling;
        _normalize = settings.Normalize;
        RegisterComponents();
    }

    /// <inheritdoc />
    public override StagedBatch forward(StagedBatch input)
    {
        var pooled = _pooling.Pool(input.Hidden, input.AttentionMask);
        return input with { Hidden = _normalize ? nn.functional.normalize(pooled, 2.0, 1) : pooled };
    }
}
