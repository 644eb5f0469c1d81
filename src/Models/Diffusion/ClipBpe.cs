using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace DistributedInference.Models.Diffusion;

/// <summary>
/// CLIP's byte-level BPE from <c>vocab.json</c> + <c>merges.txt</c>, computing what the folder's <c>tokenizer.json</c>
/// computes in Hugging Face's tokenizers (transformers' CLIPConverter pipeline, and transformers 5's CLIPTokenizer):
/// normalise (NFC, every whitespace run to one space, lowercase char by char), split into words
/// (<c>'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+</c>, whitespace dropped), map each word's UTF-8 bytes to
/// GPT-2's byte symbols, append <c>&lt;/w&gt;</c> to the last symbol, and merge pairs by rank. The literal special
/// tokens <c>&lt;|startoftext|&gt;</c> and <c>&lt;|endoftext|&gt;</c> in a text are their own ids. Safe to call from
/// several threads.
/// </summary>
internal sealed class ClipBpe
{
    private const string EndOfWord = "</w>";
    private static readonly string[] Contractions = ["s", "t", "re", "ve", "m", "ll", "d"];
    private static readonly char[] ByteSymbols = BytesToUnicode();

    private readonly Dictionary<string, long> _vocab;
    private readonly Dictionary<(string, string), int> _ranks;
    private readonly Dictionary<string, long> _special;
    private readonly long _unknownId;
    private readonly ConcurrentDictionary<string, long[]> _cache = new(StringComparer.Ordinal);

    public ClipBpe(Dictionary<string, long> vocab, IReadOnlyList<(string Left, string Right)> merges, Dictionary<string, long> special, long unknownId)
    {
        _vocab = vocab;
        _ranks = new Dictionary<(string, string), int>();
        for (var i = 0; i < merges.Count; i++)
        {
            _ranks.TryAdd(merges[i], i);
        }

        _special = special;
        _unknownId = unknownId;
    }

    /// <summary>The token strings by id (for decoding); absent ids are null.</summary>
    public string?[] TokensById()
    {
        var tokens = new string?[_vocab.Values.Concat(_special.Values).Max() + 1];
        foreach (var (token, id) in _vocab.Concat(_special))
        {
            tokens[id] = token;
        }

        return tokens;
    }

    /// <summary>Reads <c>vocab.json</c> (token to id) and <c>merges.txt</c> (a <c>#version</c> line, then "a b" a line).</summary>
    /// <exception cref="InvalidInputException">A missing or malformed file (one line).</exception>
    public static ClipBpe FromFiles(string vocabPath, string mergesPath, string unknownToken, IEnumerable<string> specialTokens)
    {
        Dictionary<string, long> vocab;
        try
        {
            var json = JsonNode.Parse(File.ReadAllText(vocabPath)) as JsonObject ?? throw new InvalidInputException($"{vocabPath}: not a JSON object");
            vocab = json.ToDictionary(p => p.Key, p => p.Value is JsonValue v && v.TryGetValue<long>(out var id) && id >= 0
                ? id
                : throw new InvalidInputException($"{vocabPath}: token {p.Key} has id {p.Value?.ToJsonString() ?? "null"}"), StringComparer.Ordinal);
        }
        catch (JsonException e)
        {
            throw new InvalidInputException($"{vocabPath}: not valid JSON ({e.Message.ReplaceLineEndings(" ")})", e);
        }

        var merges = new List<(string, string)>();
        var lines = File.ReadAllLines(mergesPath);
        for (var i = 0; i < lines.Length; i++)
        {
            if ((i == 0 && lines[i].StartsWith("#version", StringComparison.Ordinal)) || lines[i].Length == 0)
            {
                continue;
            }

            var parts = lines[i].Split(' ');
            if (parts.Length != 2)
            {
                throw new InvalidInputException($"{mergesPath}: line {i + 1} is not a merge (\"left right\")");
            }

            merges.Add((parts[0], parts[1]));
        }

        var special = specialTokens.Where(vocab.ContainsKey).ToDictionary(t => t, t => vocab[t], StringComparer.Ordinal);
        return new ClipBpe(vocab, merges, special, vocab.TryGetValue(unknownToken, out var unknown) ? unknown : 0);
    }

    /// <summary>
    /// A tokenizer with CLIP's id layout and no merges: ids 0-255 the byte symbols, 256-511 the same with
    /// <c>&lt;/w&gt;</c> (as CLIP's own vocabulary starts), <paramref name="bos"/> and <paramref name="eos"/>: every word is
    /// spelled byte by byte. For built-in pipelines with random weights, which ship no vocabulary.
    /// </summary>
    public static ClipBpe BytesOnly(long bos, long eos)
    {
        var vocab = new Dictionary<string, long>(StringComparer.Ordinal);
        for (var i = 0; i < 256; i++)
        {
            vocab[ByteSymbols[ByteOrder[i]].ToString()] = i;
            vocab[ByteSymbols[ByteOrder[i]] + EndOfWord] = i + 256;
        }

        var special = new Dictionary<string, long>(StringComparer.Ordinal) { ["<|startoftext|>"] = bos, ["<|endoftext|>"] = eos };
        foreach (var (token, id) in special)
        {
            vocab[token] = id;
        }

        return new ClipBpe(vocab, [], special, eos);
    }

    /// <summary>The ids of a text's tokens, without bos/eos.</summary>
    /// <exception cref="InvalidInputException">The text is not valid UTF-16 (a lone surrogate).</exception>
    public List<long> Encode(string text)
    {
        var ids = new List<long>();
        var start = 0;
        while (start <= text.Length)
        {
            var (at, token) = NextSpecial(text, start);
            EncodeOrdinary(text[start..at], ids);
            if (token is null)
            {
                break;
            }

            ids.Add(_special[token]);
            start = at + token.Length;
        }

        return ids;
    }

    /// <summary>The text of the ids: byte symbols back to bytes, <c>&lt;/w&gt;</c> to a space, special tokens skipped when asked.</summary>
    public string Decode(IEnumerable<long> ids, string?[] tokens, bool skipSpecial)
    {
        var text = new StringBuilder();
        foreach (var id in ids)
        {
            if (id < 0 || id >= tokens.Length || tokens[id] is not { } token)
            {
                throw new InvalidInputException($"token id {id} is outside the vocabulary");
            }

            if (!_special.ContainsKey(token) || !skipSpecial)
            {
                text.Append(token);
            }
        }

        var symbols = text.ToString().Replace(EndOfWord, " ", StringComparison.Ordinal);
        var bytes = new List<byte>();
        foreach (var c in symbols)
        {
            var b = Array.IndexOf(ByteSymbols, c);
            if (b >= 0)
            {
                bytes.Add((byte)b);
            }
            else
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(c.ToString()));
            }
        }

        return Encoding.UTF8.GetString(bytes.ToArray()).TrimEnd(' ');
    }

    // The ids of byte b's symbol in CLIP's layout: the printable bytes first, in order, then the others (bytes_to_unicode's order).
    private static readonly int[] ByteOrder = Enumerable.Range(0, 256).OrderBy(b => ByteSymbols[b]).ToArray();

    private (int At, string? Token) NextSpecial(string text, int start)
    {
        var best = (At: text.Length, Token: (string?)null);
        foreach (var token in _special.Keys)
        {
            var at = text.IndexOf(token, start, StringComparison.Ordinal);
            if (at >= 0 && at < best.At)
            {
                best = (at, token);
            }
        }

        return best;
    }

    private void EncodeOrdinary(string text, List<long> ids)
    {
        if (text.Length == 0)
        {
            return;
        }

        foreach (var word in Words(Normalize(text)))
        {
            ids.AddRange(_cache.GetOrAdd(word, Merge));
        }
    }

    // NFC, whitespace runs to one space, then lowercase rune by rune (Rust's char::to_lowercase: no final-sigma rule;
    // U+0130 becomes "i" + U+0307).
    private static string Normalize(string text)
    {
        string nfc;
        try
        {
            nfc = text.Normalize(NormalizationForm.FormC);
        }
        catch (ArgumentException e)
        {
            throw new InvalidInputException($"cannot tokenize the text: {e.Message.ReplaceLineEndings(" ")}", e);
        }

        var result = new StringBuilder(nfc.Length);
        var inSpace = false;
        foreach (var rune in nfc.EnumerateRunes())
        {
            if (Rune.IsWhiteSpace(rune))
            {
                if (!inSpace)
                {
                    result.Append(' ');
                }

                inSpace = true;
                continue;
            }

            inSpace = false;
            if (rune.Value == 0x130)
            {
                result.Append("i\u0307");
            }
            else
            {
                result.Append(Rune.ToLowerInvariant(rune).ToString());
            }
        }

        return result.ToString();
    }

    private static IEnumerable<string> Words(string text)
    {
        var runes = text.EnumerateRunes().ToArray();
        var i = 0;
        while (i < runes.Length)
        {
            var rune = runes[i];
            if (Rune.IsWhiteSpace(rune))
            {
                i++;
                continue;
            }

            if (rune.Value == '\'')
            {
                var rest = string.Concat(runes.Skip(i + 1).Take(2).Select(r => r.ToString()));
                var contraction = Contractions.FirstOrDefault(c => rest.StartsWith(c, StringComparison.Ordinal));
                if (contraction is not null)
                {
                    yield return "'" + contraction;
                    i += 1 + contraction.Length;
                    continue;
                }
            }

            var start = i;
            if (IsLetter(rune))
            {
                while (i < runes.Length && IsLetter(runes[i]))
                {
                    i++;
                }
            }
            else if (IsNumber(rune))
            {
                i++;
            }
            else
            {
                while (i < runes.Length && !Rune.IsWhiteSpace(runes[i]) && !IsLetter(runes[i]) && !IsNumber(runes[i]))
                {
                    i++;
                }
            }

            yield return string.Concat(runes[start..i].Select(r => r.ToString()));
        }
    }

    private static bool IsLetter(Rune rune) => Rune.GetUnicodeCategory(rune) is UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter
        or UnicodeCategory.TitlecaseLetter or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter;

    private static bool IsNumber(Rune rune) => Rune.GetUnicodeCategory(rune) is UnicodeCategory.DecimalDigitNumber
        or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber;

    // One word's BPE: byte symbols, </w> on the last, then the lowest-ranked pair merged everywhere until none is left.
    private long[] Merge(string word)
    {
        var symbols = Encoding.UTF8.GetBytes(word).Select(b => ByteSymbols[b].ToString()).ToList();
        symbols[^1] += EndOfWord;
        while (symbols.Count > 1)
        {
            var best = (Rank: int.MaxValue, Pair: (string.Empty, string.Empty));
            for (var i = 0; i < symbols.Count - 1; i++)
            {
                if (_ranks.TryGetValue((symbols[i], symbols[i + 1]), out var rank) && rank < best.Rank)
                {
                    best = (rank, (symbols[i], symbols[i + 1]));
                }
            }

            if (best.Rank == int.MaxValue)
            {
                break;
            }

            var merged = new List<string>(symbols.Count);
            for (var i = 0; i < symbols.Count; i++)
            {
                if (i < symbols.Count - 1 && symbols[i] == best.Pair.Item1 && symbols[i + 1] == best.Pair.Item2)
                {
                    merged.Add(symbols[i] + symbols[i + 1]);
                    i++;
                }
                else
                {
                    merged.Add(symbols[i]);
                }
            }

            symbols = merged;
        }

        return symbols.Select(s => _vocab.TryGetValue(s, out var id) ? id : _unknownId).ToArray();
    }

    // GPT-2's bytes_to_unicode: printable bytes map to themselves, the others to 256, 257, ... in order.
    private static char[] BytesToUnicode()
    {
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
