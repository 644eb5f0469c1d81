using System.Text.Json;
using System.Text.Json.Nodes;
using Tokenizers.DotNet;

namespace DistributedInference.Models.Tokenization;

/// <summary>
/// A model folder's <c>tokenizer.json</c> run by Hugging Face's own Rust <c>tokenizers</c> library (through the
/// Tokenizers.DotNet binding), so ids equal what <c>AutoTokenizer</c>/<c>PreTrainedTokenizerFast</c> gives.
/// </summary>
/// <remarks>
/// <para>
/// The binding exposes only <c>encode(text, add_special_tokens=True)</c> and
/// <c>decode(ids, skip_special_tokens=True)</c>. The other two behaviours are built from variants of the same file,
/// loaded by the same Rust code: one with <c>post_processor</c> removed (what <c>add_special_tokens=False</c> does: the
/// post-processor is the only step that adds tokens) and one whose added tokens are marked non-special (so decode
/// skips none of them, as <c>skip_special_tokens=False</c> does). Token strings (<see cref="Tokens"/>) come from the
/// file's <c>model.vocab</c> and <c>added_tokens</c>, as <c>convert_ids_to_tokens</c> reads them.
/// </para>
/// <para>
/// The file's own <c>padding</c> and <c>truncation</c> sections are dropped: transformers' fast tokenizer resets them on
/// every call (<c>PreTrainedTokenizerFast.set_truncation_and_padding</c>: no padding and no truncation unless the call
/// asks), so a sentence-transformers folder whose file pads to 128 and truncates at 128 still gives each text its own
/// tokens. Callers pad (<see cref="TokenBatch"/>) and truncate (<see cref="Encode(string, int)"/>) as the call asks.
/// </para>
/// <para>Safe to call from several threads (the native side keeps each tokenizer behind a read lock).</para>
/// </remarks>
public sealed class HuggingFaceTokenizer : ITextTokenizer, IDisposable
{
    /// <summary>The file name a Hugging Face model folder keeps its fast tokenizer in.</summary>
    public const string FileName = "tokenizer.json";

    private readonly Tokenizer _withSpecialTokens;
    private readonly Tokenizer _withoutSpecialTokens;
    private readonly Tokenizer _keepingSpecialTokens;
    private readonly string?[] _tokens;
    private readonly Dictionary<string, long> _ids;

    private HuggingFaceTokenizer(string path, JsonObject file)
    {
        var json = (JsonObject)file.DeepClone();
        json["padding"] = null;
        json["truncation"] = null;
        RejectBacktrackingPatterns(path, json);
        (_tokens, _ids) = ReadVocabulary(path, json);
        _withSpecialTokens = Open(path, json);
        try
        {
            var plain = (JsonObject)json.DeepClone();
            plain["post_processor"] = null;
            _withoutSpecialTokens = Open(path, plain);
            try
            {
                var verbatim = (JsonObject)json.DeepClone();
                foreach (var token in verbatim["added_tokens"] as JsonArray ?? [])
                {
                    if (token is JsonObject added)
                    {
                        added["special"] = false;
                    }
                }

                _keepingSpecialTokens = Open(path, verbatim);
            }
            catch
            {
                _withoutSpecialTokens.Dispose();
                throw;
            }
        }
        catch
        {
            _withSpecialTokens.Dispose();
            throw;
        }
    }

    /// <summary>Ids the tokenizer can produce: the highest id of its vocabulary and added tokens, plus one.</summary>
    public int VocabularySize => _tokens.Length;

    /// <summary>Loads <c>tokenizer.json</c> from a Hugging Face model folder.</summary>
    /// <exception cref="InvalidInputException">The folder or its <c>tokenizer.json</c> is missing, or the file does
    /// not parse as a tokenizer.</exception>
    public static HuggingFaceTokenizer Load(string modelFolder)
    {
        if (!Directory.Exists(modelFolder))
        {
            throw new InvalidInputException($"model folder {modelFolder} does not exist");
        }

        var path = Path.Combine(modelFolder, FileName);
        if (!File.Exists(path))
        {
            throw new InvalidInputException($"{modelFolder} has no {FileName}: this model folder has no fast tokenizer");
        }

        return FromFile(path);
    }

    /// <summary>Loads a <c>tokenizer.json</c> file.</summary>
    /// <exception cref="InvalidInputException">The file is missing or does not parse as a tokenizer.</exception>
    public static HuggingFaceTokenizer FromFile(string path)
    {
        if (!File.Exists(path))
        {
            throw new InvalidInputException($"{path} does not exist");
        }

        JsonObject json;
        try
        {
            json = JsonNode.Parse(File.ReadAllText(path)) as JsonObject
                ?? throw new InvalidInputException($"{path}: not a tokenizer (the JSON is not an object)");
        }
        catch (JsonException e)
        {
            throw new InvalidInputException($"{path}: not valid JSON ({OneLine(e.Message)})", e);
        }

        return new HuggingFaceTokenizer(path, json);
    }

    /// <inheritdoc />
    /// <exception cref="InvalidInputException">The text cannot be encoded (e.g. a lone UTF-16 surrogate).</exception>
    public IReadOnlyList<long> Encode(string text, bool addSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        var tokenizer = addSpecialTokens ? _withSpecialTokens : _withoutSpecialTokens;
        uint[] ids;
        try
        {
            ids = tokenizer.Encode(text);
        }
        catch (TokenizerException e)
        {
            throw new InvalidInputException($"cannot tokenize the text: {OneLine(e.Message)}", e);
        }

        return Array.ConvertAll(ids, id => (long)id);
    }

    /// <summary>
    /// Token ids of <paramref name="text"/> with the post-processor's special tokens, the text's own tokens cut on the
    /// right so that the whole is at most <paramref name="maxLength"/> long, as
    /// <c>tokenizer(text, truncation=True, max_length=maxLength)</c> does (BERT: <c>[CLS]</c> + up to maxLength-2
    /// tokens + <c>[SEP]</c>).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxLength"/> leaves no room beside the special
    /// tokens.</exception>
    public IReadOnlyList<long> Encode(string text, int maxLength)
    {
        var full = Encode(text, addSpecialTokens: true);
        if (full.Count <= maxLength)
        {
            return full;
        }

        var plain = Encode(text, addSpecialTokens: false);
        var added = full.Count - plain.Count;
        if (maxLength <= added)
        {
            throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, $"the tokenizer adds {added} special tokens");
        }

        // The post-processor puts its tokens around the text's: find where the text's tokens start.
        var start = Enumerable.Range(0, added + 1).First(s => plain.Select((id, i) => full[s + i] == id).All(b => b));
        return [.. full.Take(start), .. plain.Take(maxLength - added), .. full.Skip(start + plain.Count)];
    }

    /// <inheritdoc />
    /// <exception cref="InvalidInputException">An id cannot be decoded.</exception>
    public string Decode(IEnumerable<long> ids, bool skipSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var native = ids.Select(id => id is >= 0 and <= uint.MaxValue
            ? (uint)id
            : throw new InvalidInputException($"token id {id} is outside the vocabulary")).ToArray();
        try
        {
            return (skipSpecialTokens ? _withSpecialTokens : _keepingSpecialTokens).Decode(native);
        }
        catch (TokenizerException e)
        {
            throw new InvalidInputException($"cannot decode the ids: {OneLine(e.Message)}", e);
        }
    }

    /// <inheritdoc />
    /// <exception cref="InvalidInputException">An id is not in the vocabulary.</exception>
    public IReadOnlyList<string> Tokens(IEnumerable<long> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        return ids.Select(id => id >= 0 && id < _tokens.Length && _tokens[id] is { } token
            ? token
            : throw new InvalidInputException($"token id {id} is outside the vocabulary")).ToList();
    }

    /// <summary>The id of a token string (vocabulary or added token), or null when there is none.</summary>
    public long? TokenToId(string token) => _ids.TryGetValue(token, out var id) ? id : null;

    /// <summary>Releases the native tokenizers.</summary>
    public void Dispose()
    {
        _withSpecialTokens.Dispose();
        _withoutSpecialTokens.Dispose();
        _keepingSpecialTokens.Dispose();
    }

    // Split and Replace regexes of the normalizer, pre-tokenizer and decoder, before the Rust library ever runs them.
    private static void RejectBacktrackingPatterns(string path, JsonObject json)
    {
        foreach (var section in new[] { "normalizer", "pre_tokenizer", "decoder" })
        {
            foreach (var regex in Regexes(json[section]))
            {
                if (BacktrackingPatterns.FindNestedRepetition(regex) is { } part)
                {
                    throw new InvalidInputException(
                        $"{path}: the {section} regex {Quoted(regex)} repeats {Quoted(part)}, a group that can match in several ways: the Rust tokenizer backtracks exponentially on it and aborts the process on long inputs, so this tokenizer is refused");
                }
            }
        }
    }

    // A JSON string literal, so control characters stay on one line; + and < are left as they are.
    private static string Quoted(string text) =>
        JsonSerializer.Serialize(text, new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });

    private static IEnumerable<string> Regexes(JsonNode? node) => node switch
    {
        JsonObject o => (o["pattern"]?["Regex"] is JsonValue regex && regex.TryGetValue<string>(out var text) ? [text] : Enumerable.Empty<string>())
            .Concat(o.Where(p => p.Key != "pattern").SelectMany(p => Regexes(p.Value))),
        JsonArray a => a.SelectMany(Regexes),
        _ => [],
    };

    private static Tokenizer Open(string path, JsonObject json)
    {
        // The binding loads only from a file: write the (possibly edited) JSON to a private temporary copy.
        var copy = Path.Combine(Path.GetTempPath(), $"di-tokenizer-{Guid.NewGuid():N}.json");
        try
        {
            File.WriteAllText(copy, json.ToJsonString());
            return new Tokenizer(copy);
        }
        catch (TokenizerException e)
        {
            throw new InvalidInputException($"{path}: not a valid tokenizer ({OneLine(e.Message)})", e);
        }
        finally
        {
            File.Delete(copy);
        }
    }

    private static (string?[] Tokens, Dictionary<string, long> Ids) ReadVocabulary(string path, JsonObject json)
    {
        // Vocabulary first, then added tokens, so an added token's spelling wins for its id (as convert_ids_to_tokens).
        var entries = new List<(string Token, long Id)>();
        try
        {
            switch (json["model"]?["vocab"])
            {
                case JsonObject vocabulary:
                    foreach (var (token, id) in vocabulary)
                    {
                        entries.Add((token, id!.GetValue<long>()));
                    }

                    break;
                case JsonArray pieces: // Unigram: [[piece, score], ...], the id is the index.
                    for (var i = 0; i < pieces.Count; i++)
                    {
                        entries.Add((pieces[i]![0]!.GetValue<string>(), i));
                    }

                    break;
                default:
                    throw new InvalidInputException($"{path}: not a tokenizer (no model.vocab)");
            }

            foreach (var token in json["added_tokens"] as JsonArray ?? [])
            {
                entries.Add((token!["content"]!.GetValue<string>(), token["id"]!.GetValue<long>()));
            }
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or NullReferenceException
            or IndexOutOfRangeException or ArgumentOutOfRangeException)
        {
            throw new InvalidInputException($"{path}: not a tokenizer (unreadable vocabulary: {OneLine(e.Message)})", e);
        }

        if (entries.Count == 0 || entries.Min(e => e.Id) < 0 || entries.Max(e => e.Id) >= int.MaxValue)
        {
            throw new InvalidInputException($"{path}: not a tokenizer (empty vocabulary or ids out of range)");
        }

        var tokens = new string?[entries.Max(e => e.Id) + 1];
        var ids = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var (token, id) in entries)
        {
            tokens[id] = token;
            ids[token] = id;
        }

        return (tokens, ids);
    }

    private static string OneLine(string message) =>
        message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? message;
}
