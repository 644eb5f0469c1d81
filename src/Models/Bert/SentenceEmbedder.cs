using static TorchSharp.torch;

namespace DistributedInference.Models.Bert;

/// <summary>
/// A sentence-transformers embedder over BERT: <see cref="BertModel"/> (Transformer module), then
/// <see cref="SentencePooling"/> (Pooling module), then L2 normalisation when the folder has a Normalize module,
/// what <c>SentenceTransformer.encode</c> computes. Not for concurrent calls (TorchSharp modules are not).
/// </summary>
public sealed class SentenceEmbedder : IDisposable
{
    private readonly bool _owns;

    /// <param name="model">The BERT, on its device and dtype.</param>
    /// <param name="settings">Pooling, normalisation, max_seq_length (see <see cref="SentenceTransformerConfig.Limited"/>).</param>
    /// <param name="tokenizer">Turns sentences into ids; null when the model has no tokenizer (a built-in without a folder).</param>
    /// <param name="owns">Dispose <paramref name="model"/> and the tokenizer's <see cref="SentenceTokenizer.Tokenizer"/> with this embedder.</param>
    public SentenceEmbedder(BertModel model, SentenceTransformerConfig settings, SentenceTokenizer? tokenizer, bool owns = false)
    {
        Model = model;
        Settings = settings;
        Tokenizer = tokenizer;
        _owns = owns;
    }

    /// <summary>The BERT.</summary>
    public BertModel Model { get; }

    /// <summary>Pooling, normalisation and truncation.</summary>
    public SentenceTransformerConfig Settings { get; }

    /// <summary>The sentence tokenizer, or null when the model came without one.</summary>
    public SentenceTokenizer? Tokenizer { get; }

    /// <summary>Width of an embedding: hidden_size times the number of pooling modes.</summary>
    public int Dimension => Model.Config.HiddenSize * Settings.Pooling.ModeCount;

    /// <summary>Embeds token ids.</summary>
    /// <param name="inputIds">[B, T] int64 ids, on any device (moved to the model's).</param>
    /// <param name="attentionMask">[B, T], 1 for tokens and 0 for padding.</param>
    /// <param name="tokenTypeIds">[B, T] segment ids, or null for all 0.</param>
    /// <returns>[B, <see cref="Dimension"/>] float32 on the CPU; the caller owns it.</returns>
    /// <exception cref="InvalidInputException">The inputs do not fit the model (see <see cref="BertModel.CheckInput"/>).</exception>
    public Tensor Embed(Tensor inputIds, Tensor attentionMask, Tensor? tokenTypeIds = null)
    {
        BertModel.CheckInput(Model.Config, inputIds, attentionMask, tokenTypeIds);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var device = Model.parameters().First().device;
        var mask = attentionMask.to(device);
        var output = Model.Forward(inputIds.to(device), mask, tokenTypeIds?.to(device));
        var pooled = Settings.Pooling.Pool(output.LastHiddenState, mask);
        var embeddings = Settings.Normalize ? nn.functional.normalize(pooled, 2.0, 1) : pooled;
        return embeddings.to(ScalarType.Float32).cpu().MoveToOuterDisposeScope();
    }

    /// <summary>Tokenizes <paramref name="sentences"/> as sentence-transformers does and embeds them.</summary>
    /// <returns>[sentences, <see cref="Dimension"/>] float32 on the CPU; the caller owns it.</returns>
    /// <exception cref="InvalidInputException">The model has no tokenizer (a built-in: give a folder), or there are no sentences.</exception>
    public Tensor Embed(IReadOnlyList<string> sentences)
    {
        var tokenizer = Tokenizer ?? throw new InvalidInputException(
            "this model has no tokenizer (a built-in with random weights): give a model folder with tokenizer.json, or token ids");
        using var batch = tokenizer.Tokenize(sentences);
        return Embed(batch.InputIds, batch.AttentionMask, batch.TokenTypeIds);
    }

    /// <summary>Disposes the model and tokenizer when this embedder owns them.</summary>
    public void Dispose()
    {
        if (_owns)
        {
            Model.Dispose();
            Tokenizer?.Tokenizer.Dispose();
        }
    }
}
