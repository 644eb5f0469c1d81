using DistributedInference.Models.Tokenization;
using static TorchSharp.torch;

namespace DistributedInference.Models.Bert;

/// <summary>
/// sentence-transformers' <c>Transformer.tokenize</c> for single sentences: strip each one, lower-case it when
/// <c>do_lower_case</c>, tokenize with the folder's <c>tokenizer.json</c> with truncation to max_seq_length
/// (<c>[CLS]</c> + up to max_seq_length-2 tokens + <c>[SEP]</c>), right-pad with the pad id; token types all 0.
/// Safe to call from several threads.
/// </summary>
public sealed class SentenceTokenizer
{
    /// <param name="tokenizer">The model folder's tokenizer (not owned: the caller disposes it).</param>
    /// <param name="maxSeqLength">Tokens a sentence keeps at most, special tokens included.</param>
    /// <param name="doLowerCase">Lower-case sentences before tokenizing.</param>
    /// <param name="padId">The id padding positions hold.</param>
    public SentenceTokenizer(HuggingFaceTokenizer tokenizer, int maxSeqLength, bool doLowerCase, long padId)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxSeqLength, 3);
        Tokenizer = tokenizer;
        MaxSeqLength = maxSeqLength;
        DoLowerCase = doLowerCase;
        PadId = padId;
    }

    /// <summary>The tokenizer that splits the text.</summary>
    public HuggingFaceTokenizer Tokenizer { get; }

    /// <summary>Tokens a sentence keeps at most, special tokens included.</summary>
    public int MaxSeqLength { get; }

    /// <summary>Whether sentences are lower-cased first.</summary>
    public bool DoLowerCase { get; }

    /// <summary>The id padding positions hold.</summary>
    public long PadId { get; }

    /// <summary>Token ids of one sentence, special tokens included, cut to <see cref="MaxSeqLength"/>.</summary>
    public IReadOnlyList<long> Encode(string sentence)
    {
        ArgumentNullException.ThrowIfNull(sentence);
        var text = sentence.Trim();
        return Tokenizer.Encode(DoLowerCase ? text.ToLowerInvariant() : text, MaxSeqLength);
    }

    /// <summary>Tokenizes and right-pads <paramref name="sentences"/> into new CPU tensors the caller owns.</summary>
    /// <exception cref="InvalidInputException">There are no sentences, or one cannot be tokenized.</exception>
    public SentenceBatch Tokenize(IReadOnlyList<string> sentences)
    {
        if (sentences.Count == 0)
        {
            throw new InvalidInputException("no sentences to embed");
        }

        var rows = sentences.Select(Encode).ToList();
        var length = rows.Max(r => r.Count);
        var ids = new long[rows.Count * length];
        var mask = new long[rows.Count * length];
        for (var r = 0; r < rows.Count; r++)
        {
            for (var t = 0; t < length; t++)
            {
                var real = t < rows[r].Count;
                ids[(r * length) + t] = real ? rows[r][t] : PadId;
                mask[(r * length) + t] = real ? 1 : 0;
            }
        }

        return new SentenceBatch(
            tensor(ids, [rows.Count, length]),
            tensor(mask, [rows.Count, length]),
            zeros(rows.Count, length, ScalarType.Int64));
    }
}
