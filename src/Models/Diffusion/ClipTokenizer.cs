using System.Text.Json.Nodes;
using DistributedInference.Models.Tokenization;
using static TorchSharp.torch;

namespace DistributedInference.Models.Diffusion;

/// <summary>
/// Stable Diffusion's CLIP tokenizer (a pipeline folder's <c>tokenizer/</c>), as the pipeline calls it:
/// <c>tokenizer(prompt, padding="max_length", max_length=model_max_length, truncation=True)</c>, i.e. bos + at most
/// model_max_length - 2 tokens + eos, padded with the pad token (SD 1.x <c>&lt;|endoftext|&gt;</c>, SD 2.x <c>!</c>) to
/// model_max_length (77). From <c>tokenizer.json</c> through Hugging Face's Rust tokenizers when the folder has it, else
/// from <c>vocab.json</c> + <c>merges.txt</c> (<see cref="ClipBpe"/>, the same ids); the special tokens and the length
/// come from <c>tokenizer_config.json</c> / <c>special_tokens_map.json</c>. Safe to call from several threads.
/// </summary>
public sealed class ClipTokenizer : ITextTokenizer, IDisposable
{
    private readonly HuggingFaceTokenizer? _fast;
    private readonly ClipBpe? _bpe;
    private readonly string?[] _tokens;

    private ClipTokenizer(HuggingFaceTokenizer? fast, ClipBpe? bpe, string?[] tokens, long bos, long eos, long pad, int maxLength, string source)
    {
        _fast = fast;
        _bpe = bpe;
        _tokens = tokens;
        BosTokenId = bos;
        EosTokenId = eos;
        PadTokenId = pad;
        ModelMaxLength = maxLength;
        Source = source;
    }

    /// <summary>Where the vocabulary came from: <c>tokenizer.json</c>, <c>vocab.json + merges.txt</c>, or the built-in byte-level one.</summary>
    public string Source { get; }

    /// <summary>The id of <c>&lt;|startoftext|&gt;</c>.</summary>
    public long BosTokenId { get; }

    /// <summary>The id of <c>&lt;|endoftext|&gt;</c>.</summary>
    public long EosTokenId { get; }

    /// <summary>The id rows are padded with.</summary>
    public long PadTokenId { get; }

    /// <summary><c>model_max_length</c>: every row's length (77).</summary>
    public int ModelMaxLength { get; }

    /// <inheritdoc/>
    public int VocabularySize => _tokens.Length;

    /// <summary>
    /// Loads a pipeline's <c>tokenizer/</c> folder: <c>tokenizer.json</c> when present (unless <paramref name="preferVocabularyFiles"/>),
    /// else <c>vocab.json</c> + <c>merges.txt</c>.
    /// </summary>
    /// <exception cref="InvalidInputException">No tokenizer files, or malformed ones (one line).</exception>
    public static ClipTokenizer Load(string folder, bool preferVocabularyFiles = false)
    {
        if (!Directory.Exists(folder))
        {
            throw new InvalidInputException($"{folder}: no such tokenizer folder");
        }

        var config = ReadSpecialTokens(folder);
        var fastPath = Path.Combine(folder, HuggingFaceTokenizer.FileName);
        var (vocabPath, mergesPath) = (Path.Combine(folder, "vocab.json"), Path.Combine(folder, "merges.txt"));
        var hasFiles = File.Exists(vocabPath) && File.Exists(mergesPath);
        if (File.Exists(fastPath) && !(preferVocabularyFiles && hasFiles))
        {
            var fast = HuggingFaceTokenizer.FromFile(fastPath);
            try
            {
                long Id(string token) => fast.TokenToId(token) ?? throw new InvalidInputException($"{fastPath}: no token {token} (named by tokenizer_config.json)");
                var tokens = Enumerable.Range(0, fast.VocabularySize).Select(i => Spelling(fast, i)).ToArray();
                return new ClipTokenizer(fast, null, tokens, Id(config.Bos), Id(config.Eos), Id(config.Pad), config.MaxLength, fastPath);
            }
            catch
            {
                fast.Dispose();
                throw;
            }
        }

        if (!hasFiles)
        {
            throw new InvalidInputException($"{folder}: no tokenizer.json, and no vocab.json + merges.txt");
        }

        var bpe = ClipBpe.FromFiles(vocabPath, mergesPath, config.Unknown, [config.Bos, config.Eos]);
        var byId = bpe.TokensById();
        long Find(string token) => Array.IndexOf(byId, token) is var i and >= 0 ? i : throw new InvalidInputException($"{vocabPath}: no token {token} (named by tokenizer_config.json)");
        return new ClipTokenizer(null, bpe, byId, Find(config.Bos), Find(config.Eos), Find(config.Pad), config.MaxLength, "vocab.json + merges.txt");
    }

    /// <summary>
    /// The tokenizer of a built-in pipeline (random weights, no vocabulary shipped): CLIP's id layout with no merges, so
    /// every word is spelled byte by byte with the ids real CLIP gives those bytes; bos and eos are the vocabulary's last
    /// two ids, as in CLIP (49406, 49407); SD 1.x pads with eos, SD 2.x with id 0 (<c>!</c>).
    /// </summary>
    public static ClipTokenizer BytesOnly(int vocabSize, bool padWithExclamation, int maxLength = 77)
    {
        var bpe = ClipBpe.BytesOnly(vocabSize - 2, vocabSize - 1);
        var tokens = bpe.TokensById();
        Array.Resize(ref tokens, vocabSize);
        return new ClipTokenizer(null, bpe, tokens, vocabSize - 2, vocabSize - 1, padWithExclamation ? 0 : vocabSize - 1, maxLength, "built-in byte-level CLIP BPE");
    }

    /// <summary>bos + the text's tokens + eos, untruncated, unpadded (as <c>tokenizer(text)</c>).</summary>
    /// <exception cref="InvalidInputException">The text cannot be encoded.</exception>
    public IReadOnlyList<long> Encode(string text, bool addSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (_fast is not null)
        {
            return _fast.Encode(text, addSpecialTokens);
        }

        var ids = _bpe!.Encode(text);
        return addSpecialTokens ? [BosTokenId, .. ids, EosTokenId] : ids;
    }

    /// <summary>The pipeline's row for <paramref name="text"/>: bos + up to model_max_length - 2 tokens + eos, then pad ids, model_max_length long.</summary>
    public long[] EncodePadded(string text)
    {
        var ids = Encode(text).ToList();
        if (ids.Count > ModelMaxLength)
        {
            ids = [.. ids.Take(ModelMaxLength - 1), EosTokenId];
        }

        return [.. ids, .. Enumerable.Repeat(PadTokenId, ModelMaxLength - ids.Count)];
    }

    /// <summary>Rows of <see cref="EncodePadded"/>: [B, model_max_length] int64 on the CPU, owned by the caller.</summary>
    public Tensor Tokenize(IReadOnlyList<string> prompts)
    {
        var rows = prompts.Select(EncodePadded).ToArray();
        return tensor(rows.SelectMany(r => r).ToArray(), [prompts.Count, ModelMaxLength]);
    }

    /// <inheritdoc/>
    public string Decode(IEnumerable<long> ids, bool skipSpecialTokens = true) =>
        _fast?.Decode(ids, skipSpecialTokens) ?? _bpe!.Decode(ids, _tokens, skipSpecialTokens);

    /// <inheritdoc/>
    public IReadOnlyList<string> Tokens(IEnumerable<long> ids) =>
        ids.Select(id => id >= 0 && id < _tokens.Length && _tokens[id] is { } token ? token : throw new InvalidInputException($"token id {id} is outside the vocabulary")).ToList();

    public void Dispose() => _fast?.Dispose();

    private static string? Spelling(HuggingFaceTokenizer tokenizer, long id)
    {
        try
        {
            return tokenizer.Tokens([id])[0];
        }
        catch (InvalidInputException)
        {
            return null;
        }
    }

    // tokenizer_config.json (or special_tokens_map.json): bos, eos, pad, unk as strings or {"content": ...} objects
    // (the old {"__type": "AddedToken"} form too), model_max_length.
    private static (string Bos, string Eos, string Pad, string Unknown, int MaxLength) ReadSpecialTokens(string folder)
    {
        var merged = new JsonObject();
        foreach (var file in new[] { "special_tokens_map.json", "tokenizer_config.json" })
        {
            var path = Path.Combine(folder, file);
            if (File.Exists(path) && ConfigJson.Load(path).Json is { } json)
            {
                foreach (var (key, value) in json)
                {
                    merged[key] = value?.DeepClone();
                }
            }
        }

        string Token(string key, string fallback) => merged[key] switch
        {
            JsonValue v when v.TryGetValue<string>(out var s) => s,
            JsonObject o when o["content"] is JsonValue c && c.TryGetValue<string>(out var s) => s,
            _ => fallback,
        };

        var eos = Token("eos_token", "<|endoftext|>");
        var maxLength = ConfigJson.Of(Path.Combine(folder, "tokenizer_config.json"), merged).Double("model_max_length") is { } m && m is >= 3 and <= 4096 ? (int)m : 77;
        return (Token("bos_token", "<|startoftext|>"), eos, Token("pad_token", eos), Token("unk_token", eos), maxLength);
    }
}
