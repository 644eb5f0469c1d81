using System.Text.Json;
using System.Text.Json.Nodes;

namespace DistributedInference.Models.Bert;

/// <summary>
/// How sentence-transformers turns a BERT into a sentence embedder, read from its folder: <c>modules.json</c>
/// (Transformer, Pooling, then optionally Normalize, in that order), the Transformer module's
/// <c>sentence_bert_config.json</c> (<c>max_seq_length</c>, <c>do_lower_case</c>) and the Pooling module's
/// <c>config.json</c>. A plain BERT folder (no <c>modules.json</c>) gets mean pooling and no normalisation. Without a
/// <c>max_seq_length</c>, sentences are cut at min(max_position_embeddings, the tokenizer's <c>model_max_length</c> from
/// <c>tokenizer_config.json</c>), as sentence-transformers' <c>Transformer</c> module does.
/// </summary>
public sealed record SentenceTransformerConfig
{
    /// <summary>
    /// The folder holding the BERT itself (config.json, weights, tokenizer): the Transformer module's path; null for a
    /// built-in model.
    /// </summary>
    public string? TransformerFolder { get; init; }

    /// <summary>
    /// <c>max_seq_length</c>: sentences are cut to this many tokens, [CLS] and [SEP] included; null when the folder
    /// does not say (then min(max_position_embeddings, <see cref="ModelMaxLength"/>), see <see cref="Limited"/>).
    /// </summary>
    public int? MaxSeqLength { get; init; }

    /// <summary>
    /// The tokenizer's <c>model_max_length</c> (the Transformer folder's <c>tokenizer_config.json</c>); null when it does
    /// not say or says transformers' "no limit" (a value above <see cref="int.MaxValue"/>, such as 1e30).
    /// </summary>
    public int? ModelMaxLength { get; init; }

    /// <summary><c>do_lower_case</c>: sentences are lower-cased before tokenizing (besides what the tokenizer does).</summary>
    public bool DoLowerCase { get; init; }

    /// <summary>The Pooling module's modes.</summary>
    public required SentencePooling Pooling { get; init; }

    /// <summary>Whether a Normalize module follows the pooling (L2 normalisation of each row).</summary>
    public bool Normalize { get; init; }

    /// <summary>
    /// This configuration with <see cref="MaxSeqLength"/> set: as given, or, when not, min(<paramref name="maxPositions"/>,
    /// <see cref="ModelMaxLength"/>), as sentence-transformers' <c>Transformer.__init__</c> sets it.
    /// </summary>
    /// <exception cref="InvalidInputException">max_seq_length is not within [3, max_position_embeddings].</exception>
    public SentenceTransformerConfig Limited(int maxPositions)
    {
        var length = MaxSeqLength ?? Math.Min(maxPositions, ModelMaxLength ?? maxPositions);
        if (length < 3 || length > maxPositions)
        {
            throw new InvalidInputException(
                $"{Path.Combine(TransformerFolder ?? string.Empty, "sentence_bert_config.json")}: max_seq_length {length} is not within [3, max_position_embeddings {maxPositions}]");
        }

        return this with { MaxSeqLength = length };
    }

    /// <summary>Reads a sentence-transformers folder, or describes a plain BERT folder.</summary>
    /// <param name="folder">The model folder.</param>
    /// <exception cref="InvalidInputException">A file does not parse, modules.json lists a module other than
    /// Transformer, Pooling, Normalize (or in another order), or the pooling mode is unknown or missing; the message
    /// names the file and key.</exception>
    public static SentenceTransformerConfig Read(string folder)
    {
        var modulesPath = Path.Combine(folder, "modules.json");
        if (!File.Exists(modulesPath))
        {
            return new SentenceTransformerConfig
            {
                TransformerFolder = folder,
                ModelMaxLength = ReadModelMaxLength(folder),
                Pooling = SentencePooling.Mean,
            };
        }

        var modules = Parse(modulesPath) as JsonArray ?? throw new InvalidInputException($"{modulesPath}: not a JSON list of modules");
        var kinds = new List<(string Kind, string Path)>();
        foreach (var module in modules)
        {
            var type = Text(modulesPath, module, "type");
            var kind = type.Split('.')[^1];
            if (kind is not ("Transformer" or "Pooling" or "Normalize"))
            {
                throw new InvalidInputException($"{modulesPath}: module type '{type}' is not supported (only Transformer, Pooling, Normalize)");
            }

            kinds.Add((kind, module?["path"]?.GetValue<string>() ?? string.Empty));
        }

        var order = string.Join(",", kinds.Select(k => k.Kind));
        if (order is not ("Transformer,Pooling" or "Transformer,Pooling,Normalize"))
        {
            throw new InvalidInputException($"{modulesPath}: modules are {order}; expected Transformer, Pooling, then optionally Normalize");
        }

        var transformer = Path.Combine(folder, kinds[0].Path);
        var bertConfigPath = Path.Combine(transformer, "sentence_bert_config.json");
        int? maxSeqLength = null;
        var lowerCase = false;
        if (File.Exists(bertConfigPath))
        {
            var settings = Parse(bertConfigPath);
            maxSeqLength = Number(bertConfigPath, settings, "max_seq_length");
            lowerCase = Flag(bertConfigPath, settings, "do_lower_case") ?? false;
        }

        return new SentenceTransformerConfig
        {
            TransformerFolder = transformer,
            MaxSeqLength = maxSeqLength,
            ModelMaxLength = ReadModelMaxLength(transformer),
            DoLowerCase = lowerCase,
            Pooling = ReadPooling(Path.Combine(folder, kinds[1].Path, "config.json")),
            Normalize = kinds.Count == 3,
        };
    }

    /// <summary>Reads a sentence-transformers Pooling <c>config.json</c>.</summary>
    /// <exception cref="InvalidInputException">The file is missing or malformed, a true <c>pooling_mode_*</c> key is
    /// unknown or not supported (weightedmean), or no mode is on.</exception>
    public static SentencePooling ReadPooling(string path)
    {
        if (!File.Exists(path))
        {
            throw new InvalidInputException($"{path}: no such file (the Pooling module's config)");
        }

        var json = Parse(path) as JsonObject ?? throw new InvalidInputException($"{path}: not a JSON object");
        var pooling = new SentencePooling();
        if (json["pooling_mode"] is not null)
        {
            // An older spelling: one mode by name.
            var mode = Text(path, json, "pooling_mode");
            pooling = mode switch
            {
                "cls" => pooling with { ClsToken = true },
                "max" => pooling with { MaxTokens = true },
                "mean" => pooling with { MeanTokens = true },
                "mean_sqrt_len_tokens" => pooling with { MeanSqrtLenTokens = true },
                "lasttoken" => pooling with { LastToken = true },
                _ => throw new InvalidInputException($"{path}: pooling_mode '{mode}' is not supported (cls, max, mean, mean_sqrt_len_tokens, lasttoken)"),
            };
        }

        foreach (var (key, _) in json.Where(p => p.Key.StartsWith("pooling_mode_", StringComparison.Ordinal)))
        {
            if (Flag(path, json, key) != true)
            {
                continue;
            }

            pooling = key switch
            {
                "pooling_mode_cls_token" => pooling with { ClsToken = true },
                "pooling_mode_max_tokens" => pooling with { MaxTokens = true },
                "pooling_mode_mean_tokens" => pooling with { MeanTokens = true },
                "pooling_mode_mean_sqrt_len_tokens" => pooling with { MeanSqrtLenTokens = true },
                "pooling_mode_lasttoken" => pooling with { LastToken = true },
                _ => throw new InvalidInputException($"{path}: {key} is not a supported pooling mode (cls_token, max_tokens, mean_tokens, mean_sqrt_len_tokens, lasttoken)"),
            };
        }

        return pooling.ModeCount > 0 ? pooling : throw new InvalidInputException($"{path}: no pooling mode is set");
    }

    // tokenizer_config.json's model_max_length; transformers writes 1e30 (VERY_LARGE_INTEGER) for "no limit".
    private static int? ReadModelMaxLength(string transformerFolder)
    {
        var path = Path.Combine(transformerFolder, "tokenizer_config.json");
        if (!File.Exists(path) || Parse(path) is not JsonObject json || json["model_max_length"] is not JsonValue value)
        {
            return null;
        }

        var length = value.TryGetValue<double>(out var number) ? number
            : throw new InvalidInputException($"{path}: model_max_length has a malformed value");
        return length switch
        {
            < 1 => throw new InvalidInputException($"{path}: model_max_length must be positive, got {length}"),
            > int.MaxValue => null,
            _ => (int)length,
        };
    }

    private static JsonNode Parse(string path)
    {
        try
        {
            return JsonNode.Parse(File.ReadAllText(path)) ?? throw new InvalidInputException($"{path}: empty JSON");
        }
        catch (JsonException e)
        {
            throw new InvalidInputException($"{path}: not valid JSON ({e.Message.Split('\n')[0]})", e);
        }
    }

    private static string Text(string path, JsonNode? node, string key) =>
        Value<string>(path, node, key) ?? throw new InvalidInputException($"{path}: no {key}");

    private static int? Number(string path, JsonNode? node, string key) =>
        node is JsonObject o && o[key] is not null ? Value<int>(path, node, key) : null;

    private static bool? Flag(string path, JsonNode? node, string key) =>
        node is JsonObject o && o[key] is not null ? Value<bool>(path, node, key) : null;

    private static T? Value<T>(string path, JsonNode? node, string key)
    {
        try
        {
            return node is JsonObject o && o[key] is { } value ? value.GetValue<T>() : default;
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            throw new InvalidInputException($"{path}: {key} has a malformed value", e);
        }
    }
}
