namespace DistributedInference.Models.Tokenization;

/// <summary>
/// Text to token ids and back, as a model's own tokenizer does it (Hugging Face <c>tokenizer.json</c>, WordPiece,
/// or GPT-2's byte-level BPE). Implementations are safe to call from several threads.
/// </summary>
public interface ITextTokenizer
{
    /// <summary>Ids the tokenizer can produce (may be fewer than the model's embedding rows, as with Qwen).</summary>
    int VocabularySize { get; }

    /// <summary>
    /// Token ids of <paramref name="text"/>; with <paramref name="addSpecialTokens"/> the post-processor's tokens
    /// (Llama 3's BOS, BERT's [CLS] ... [SEP]) are added, as <c>encode(text, add_special_tokens=True)</c> does.
    /// </summary>
    IReadOnlyList<long> Encode(string text, bool addSpecialTokens = true);

    /// <summary>The text of <paramref name="ids"/>, special tokens left out unless <paramref name="skipSpecialTokens"/> is false.</summary>
    string Decode(IEnumerable<long> ids, bool skipSpecialTokens = true);

    /// <summary>The token string of each id (the vocabulary's own spelling, e.g. <c>Ġdog</c> or <c>##s</c>).</summary>
    IReadOnlyList<string> Tokens(IEnumerable<long> ids);
}
