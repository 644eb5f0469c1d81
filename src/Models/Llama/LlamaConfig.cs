using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace DistributedInference.Models.Llama;

/// <summary>
/// Hyper-parameters of a Llama-style decoder (transformers' <c>LlamaConfig</c>, <c>MistralConfig</c>,
/// <c>Qwen2Config</c>, <c>Qwen3Config</c>), read from a Hugging Face <c>config.json</c> in the v4 layout
/// (<c>rope_theta</c> + <c>rope_scaling</c>, <c>torch_dtype</c>) or the v5 one (<c>rope_parameters</c>,
/// <c>dtype</c>). Keys a file leaves out take transformers' defaults for its <c>model_type</c>.
/// </summary>
public sealed record LlamaConfig
{
    /// <summary>The <c>model_type</c> values this decoder runs.</summary>
    public static IReadOnlyList<string> SupportedModelTypes { get; } = ["llama", "mistral", "qwen2", "qwen3"];

    /// <summary><c>model_type</c>: llama, mistral, qwen2 or qwen3.</summary>
    public string ModelType { get; init; } = "llama";

    /// <summary><c>vocab_size</c>: rows of the embedding and of the head.</summary>
    public int VocabSize { get; init; } = 32000;

    /// <summary><c>hidden_size</c>.</summary>
    public int HiddenSize { get; init; } = 4096;

    /// <summary><c>intermediate_size</c>: width of the SwiGLU MLP.</summary>
    public int IntermediateSize { get; init; } = 11008;

    /// <summary><c>num_hidden_layers</c>.</summary>
    public int LayerCount { get; init; } = 32;

    /// <summary><c>num_attention_heads</c>: query heads.</summary>
    public int HeadCount { get; init; } = 32;

    /// <summary><c>num_key_value_heads</c>: key/value heads (grouped-query attention when fewer than query heads).</summary>
    public int KeyValueHeadCount { get; init; } = 32;

    /// <summary><c>head_dim</c>: width of one head (hidden_size / num_attention_heads when the file has none).</summary>
    public int HeadDim { get; init; } = 128;

    /// <summary><c>rms_norm_eps</c>.</summary>
    public double RmsNormEps { get; init; } = 1e-6;

    /// <summary><c>max_position_embeddings</c>: the longest sequence (prompt + generated tokens) accepted.</summary>
    public int MaxPositions { get; init; } = 2048;

    /// <summary>Rotary embedding set-up.</summary>
    public RopeParameters Rope { get; init; } = RopeParameters.Default(10000);

    /// <summary>Biases on q_proj, k_proj and v_proj (<c>attention_bias</c>; always for qwen2).</summary>
    public bool QkvBias { get; init; }

    /// <summary>Bias on o_proj (<c>attention_bias</c> for llama; never for qwen2).</summary>
    public bool OutputBias { get; init; }

    /// <summary>Biases on the MLP projections (<c>mlp_bias</c>, llama only).</summary>
    public bool MlpBias { get; init; }

    /// <summary>Per-head RMSNorm of queries and keys before RoPE (<c>q_norm</c>, <c>k_norm</c>: qwen3).</summary>
    public bool QueryKeyNorm { get; init; }

    /// <summary><c>tie_word_embeddings</c>: the head multiplies by <c>model.embed_tokens.weight</c>.</summary>
    public bool TieWordEmbeddings { get; init; }

    /// <summary>Keys a sliding-attention layer sees at most (<c>sliding_window</c>); null = full attention everywhere.</summary>
    public int? SlidingWindow { get; init; }

    /// <summary>Per layer, whether it uses sliding-window attention (<c>layer_types</c> = <c>sliding_attention</c>).</summary>
    public IReadOnlyList<bool> SlidingLayers { get; init; } = [];

    /// <summary>The dtype the weights were saved in (<c>torch_dtype</c> or <c>dtype</c>), or null.</summary>
    public string? StoredDtype { get; init; }

    /// <summary><c>bos_token_id</c>, or null.</summary>
    public long? BosTokenId { get; init; }

    /// <summary><c>eos_token_id</c> (an int or a list in the file); empty when there is none.</summary>
    public IReadOnlyList<long> EosTokenIds { get; init; } = [];

    /// <summary><c>pad_token_id</c>, or null.</summary>
    public long? PadTokenId { get; init; }

    /// <summary>Query heads per key/value head.</summary>
    public int GroupSize => HeadCount / KeyValueHeadCount;

    /// <summary>Whether layer <paramref name="layer"/> attends through a sliding window.</summary>
    public bool IsSliding(int layer) => SlidingWindow is not null && layer < SlidingLayers.Count && SlidingLayers[layer];

    /// <summary>
    /// Built-in configurations with the published hyper-parameters of the named models (random weights from a seed;
    /// nothing is downloaded), and <c>llama-tiny</c> for tests.
    /// </summary>
    public static IReadOnlyDictionary<string, LlamaConfig> BuiltIn { get; } = new Dictionary<string, LlamaConfig>(StringComparer.OrdinalIgnoreCase)
    {
        // meta-llama/Llama-3.2-1B
        ["llama-3.2-1b"] = Llama3(vocab: 128256, hidden: 2048, intermediate: 8192, layers: 16, heads: 32, kvHeads: 8, headDim: 64, ropeFactor: 32, tied: true),
        // meta-llama/Llama-3.2-3B
        ["llama-3.2-3b"] = Llama3(vocab: 128256, hidden: 3072, intermediate: 8192, layers: 28, heads: 24, kvHeads: 8, headDim: 128, ropeFactor: 32, tied: true),
        // meta-llama/Llama-3.1-8B
        ["llama-3.1-8b"] = Llama3(vocab: 128256, hidden: 4096, intermediate: 14336, layers: 32, heads: 32, kvHeads: 8, headDim: 128, ropeFactor: 8, tied: false),
        // Qwen/Qwen3-0.6B
        ["qwen3-0.6b"] = Finish(new LlamaConfig
        {
            ModelType = "qwen3",
            VocabSize = 151936,
            HiddenSize = 1024,
            IntermediateSize = 3072,
            LayerCount = 28,
            HeadCount = 16,
            KeyValueHeadCount = 8,
            HeadDim = 128,
            RmsNormEps = 1e-6,
            MaxPositions = 40960,
            Rope = RopeParameters.Default(1000000),
            QueryKeyNorm = true,
            TieWordEmbeddings = true,
            StoredDtype = "bfloat16",
            BosTokenId = 151643,
            EosTokenIds = [151645],
        }),
        // Qwen/Qwen2.5-0.5B
        ["qwen2.5-0.5b"] = Finish(new LlamaConfig
        {
            ModelType = "qwen2",
            VocabSize = 151936,
            HiddenSize = 896,
            IntermediateSize = 4864,
            LayerCount = 24,
            HeadCount = 14,
            KeyValueHeadCount = 2,
            HeadDim = 64,
            RmsNormEps = 1e-6,
            MaxPositions = 32768,
            Rope = RopeParameters.Default(1000000),
            QkvBias = true,
            TieWordEmbeddings = true,
            StoredDtype = "bfloat16",
            BosTokenId = 151643,
            EosTokenIds = [151643],
        }),
        // mistralai/Mistral-7B-v0.1 (sliding window 4096)
        ["mistral-7b"] = Finish(new LlamaConfig
        {
            ModelType = "mistral",
            VocabSize = 32000,
            HiddenSize = 4096,
            IntermediateSize = 14336,
            LayerCount = 32,
            HeadCount = 32,
            KeyValueHeadCount = 8,
            HeadDim = 128,
            RmsNormEps = 1e-5,
            MaxPositions = 32768,
            Rope = RopeParameters.Default(10000),
            SlidingWindow = 4096,
            StoredDtype = "bfloat16",
            BosTokenId = 1,
            EosTokenIds = [2],
        }),
        // A Llama 3 shaped model small enough for tests and a 2-core CPU.
        ["llama-tiny"] = Finish(new LlamaConfig
        {
            ModelType = "llama",
            VocabSize = 640,
            HiddenSize = 64,
            IntermediateSize = 160,
            LayerCount = 2,
            HeadCount = 4,
            KeyValueHeadCount = 2,
            HeadDim = 16,
            RmsNormEps = 1e-5,
            MaxPositions = 256,
            Rope = RopeParameters.Llama3(500000, 8, 1, 4, 64),
            TieWordEmbeddings = true,
            StoredDtype = "float32",
            BosTokenId = 637,
            EosTokenIds = [638, 639],
        }),
    };

    /// <summary>
    /// Reads a Hugging Face <c>config.json</c>.
    /// </summary>
    /// <exception cref="InvalidInputException">One line naming the file and the key at fault: a missing file, bad JSON,
    /// an unsupported <c>model_type</c>, <c>rope_type</c> or <c>hidden_act</c>, or an impossible value.</exception>
    public static LlamaConfig FromJson(string path)
    {
        if (!File.Exists(path))
        {
            throw new InvalidInputException($"{path}: no such file");
        }

        JsonObject json;
        try
        {
            json = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new InvalidInputException($"{path}: not a JSON object");
        }
        catch (JsonException e)
        {
            throw new InvalidInputException($"{path}: not valid JSON ({OneLine(e.Message)})", e);
        }

        return FromJson(path, json);
    }

    /// <summary>Reads a parsed <c>config.json</c>; <paramref name="source"/> names it in errors.</summary>
    /// <exception cref="InvalidInputException">As <see cref="FromJson(string)"/>.</exception>
    public static LlamaConfig FromJson(string source, JsonObject json)
    {
        var modelType = String(source, json, "model_type");
        if (modelType is null || !SupportedModelTypes.Contains(modelType))
        {
            throw new InvalidInputException(
                $"{source}: model_type '{modelType ?? "(none)"}' is not supported (supported: {string.Join(", ", SupportedModelTypes)})");
        }

        var isQwen = modelType is "qwen2" or "qwen3";
        var hidden = Int(source, json, "hidden_size") ?? 4096;
        var heads = Int(source, json, "num_attention_heads") ?? 32;
        var defaultHeadDim = modelType == "qwen3" ? 128 : (heads > 0 ? hidden / heads : 0);
        var attentionBias = Bool(source, json, "attention_bias") ?? false;

        var activation = String(source, json, "hidden_act") ?? "silu";
        if (activation != "silu")
        {
            throw new InvalidInputException($"{source}: hidden_act '{activation}' is not supported (only silu)");
        }

        var layers = Int(source, json, "num_hidden_layers") ?? 32;
        var sliding = Sliding(source, json, modelType, layers);
        var config = new LlamaConfig
        {
            ModelType = modelType,
            VocabSize = Int(source, json, "vocab_size") ?? (isQwen ? 151936 : 32000),
            HiddenSize = hidden,
            IntermediateSize = Int(source, json, "intermediate_size") ?? modelType switch { "mistral" => 14336, "llama" => 11008, _ => 22016 },
            LayerCount = layers,
            HeadCount = heads,
            KeyValueHeadCount = Int(source, json, "num_key_value_heads") ?? (modelType == "mistral" ? 8 : heads),
            HeadDim = Int(source, json, "head_dim") ?? defaultHeadDim,
            RmsNormEps = Double(source, json, "rms_norm_eps") ?? 1e-6,
            MaxPositions = Int(source, json, "max_position_embeddings") ?? modelType switch { "llama" => 2048, "mistral" => 4096 * 32, _ => 32768 },
            Rope = ReadRope(source, json),
            QkvBias = modelType == "qwen2" || attentionBias,
            OutputBias = modelType != "qwen2" && attentionBias,
            MlpBias = modelType == "llama" && (Bool(source, json, "mlp_bias") ?? false),
            QueryKeyNorm = modelType == "qwen3",
            TieWordEmbeddings = Bool(source, json, "tie_word_embeddings") ?? false,
            SlidingWindow = sliding.Window,
            SlidingLayers = sliding.Layers,
            StoredDtype = String(source, json, "dtype") ?? String(source, json, "torch_dtype"),
            BosTokenId = Long(source, json, "bos_token_id") ?? (modelType is "llama" or "mistral" ? 1 : null),
            EosTokenIds = TokenIds(source, json, "eos_token_id") ?? (modelType is "llama" or "mistral" ? [2] : []),
            PadTokenId = Long(source, json, "pad_token_id"),
        };
        return config.Validate(source);
    }

    /// <summary>Fails with one line naming the first impossible value; returns the config itself.</summary>
    /// <exception cref="InvalidInputException">A non-positive size, heads not divisible by key/value heads, an odd head_dim, ...</exception>
    public LlamaConfig Validate(string source)
    {
        void Positive(string key, double value)
        {
            if (!(value > 0) || double.IsInfinity(value))
            {
                throw new InvalidInputException($"{source}: {key} must be positive, got {value.ToString(CultureInfo.InvariantCulture)}");
            }
        }

        Positive("vocab_size", VocabSize);
        Positive("hidden_size", HiddenSize);
        Positive("intermediate_size", IntermediateSize);
        Positive("num_hidden_layers", LayerCount);
        Positive("num_attention_heads", HeadCount);
        Positive("num_key_value_heads", KeyValueHeadCount);
        Positive("head_dim", HeadDim);
        Positive("rms_norm_eps", RmsNormEps);
        Positive("max_position_embeddings", MaxPositions);
        Positive("rope_theta", Rope.Theta);
        if (HeadCount % KeyValueHeadCount != 0)
        {
            throw new InvalidInputException(
                $"{source}: num_attention_heads {HeadCount} is not a multiple of num_key_value_heads {KeyValueHeadCount}");
        }

        if (HeadDim % 2 != 0)
        {
            throw new InvalidInputException($"{source}: head_dim {HeadDim} must be even for rotary embeddings");
        }

        if (Rope.Type == "llama3")
        {
            Positive("rope_scaling.factor", Rope.Factor);
            Positive("rope_scaling.low_freq_factor", Rope.LowFreqFactor);
            Positive("rope_scaling.original_max_position_embeddings", Rope.OriginalMaxPositions);
            if (!(Rope.HighFreqFactor > Rope.LowFreqFactor))
            {
                throw new InvalidInputException(
                    $"{source}: rope_scaling.high_freq_factor {Rope.HighFreqFactor} must be greater than low_freq_factor {Rope.LowFreqFactor}");
            }
        }

        if (SlidingWindow is { } window)
        {
            Positive("sliding_window", window);
        }

        if (SlidingLayers.Count != 0 && SlidingLayers.Count != LayerCount)
        {
            throw new InvalidInputException($"{source}: layer_types has {SlidingLayers.Count} entries for {LayerCount} layers");
        }

        foreach (var (key, id) in EosTokenIds.Select(id => ("eos_token_id", (long?)id)).Append(("bos_token_id", BosTokenId)).Append(("pad_token_id", PadTokenId)))
        {
            if (id is < 0)
            {
                throw new InvalidInputException($"{source}: {key} {id} is negative");
            }
        }

        return this;
    }

    private static LlamaConfig Llama3(int vocab, int hidden, int intermediate, int layers, int heads, int kvHeads, int headDim, double ropeFactor, bool tied) =>
        Finish(new LlamaConfig
        {
            ModelType = "llama",
            VocabSize = vocab,
            HiddenSize = hidden,
            IntermediateSize = intermediate,
            LayerCount = layers,
            HeadCount = heads,
            KeyValueHeadCount = kvHeads,
            HeadDim = headDim,
            RmsNormEps = 1e-5,
            MaxPositions = 131072,
            Rope = RopeParameters.Llama3(500000, ropeFactor, 1, 4, 8192),
            TieWordEmbeddings = tied,
            StoredDtype = "bfloat16",
            BosTokenId = 128000,
            EosTokenIds = [128001],
        });

    private static LlamaConfig Finish(LlamaConfig config) =>
        (config with { SlidingLayers = Enumerable.Repeat(config.SlidingWindow is not null, config.LayerCount).ToList() }).Validate("built-in config");

    private static RopeParameters ReadRope(string source, JsonObject json)
    {
        // v5: rope_parameters holds everything; v4: rope_theta beside an optional rope_scaling.
        var parameters = Object(source, json, "rope_parameters");
        if (parameters?.FirstOrDefault(p => p.Value is JsonObject) is { Key: { } layerType })
        {
            // transformers v5 keys rope_parameters by layer type for models whose layers differ (Gemma 3); these
            // families use one set for every layer.
            throw new InvalidInputException(
                $"{source}: rope_parameters.{layerType}: RoPE parameters per layer type are not supported for {json["model_type"]}: give one rope_parameters object (rope_type, rope_theta, ...)");
        }

        var (scaling, prefix) = parameters is not null ? (parameters, "rope_parameters") : (Object(source, json, "rope_scaling"), "rope_scaling");
        var theta = (parameters is not null ? Double(source, parameters, "rope_theta", prefix) : null)
            ?? Double(source, json, "rope_theta") ?? 10000;
        if (scaling is null)
        {
            return RopeParameters.Default(theta);
        }

        var type = String(source, scaling, "rope_type", prefix) ?? String(source, scaling, "type", prefix) ?? "default";
        switch (type)
        {
            case "default":
                return RopeParameters.Default(theta);
            case "llama3":
                double Required(string key) => Double(source, scaling, key, prefix)
                    ?? throw new InvalidInputException($"{source}: {prefix}.{key} is required for rope_type 'llama3'");
                return RopeParameters.Llama3(
                    theta, Required("factor"), Required("low_freq_factor"), Required("high_freq_factor"),
                    checked((int)Required("original_max_position_embeddings")));
            default:
                throw new InvalidInputException(
                    $"{source}: rope_type '{type}' is not supported (supported: {string.Join(", ", RopeParameters.SupportedTypes)})");
        }
    }

    private static (int? Window, IReadOnlyList<bool> Layers) Sliding(string source, JsonObject json, string modelType, int layers)
    {
        // mistral: sliding_window (default 4096) on every layer, null = full attention. qwen2/qwen3: only with
        // use_sliding_window, and only for layers from max_window_layers on. An explicit layer_types list wins.
        int? window = json.ContainsKey("sliding_window") ? Int(source, json, "sliding_window") : 4096;
        if (modelType is "qwen2" or "qwen3" && !(Bool(source, json, "use_sliding_window") ?? false))
        {
            window = null;
        }

        if (modelType == "llama")
        {
            window = null;
        }

        if (json["layer_types"] is JsonArray types)
        {
            var sliding = new List<bool>();
            foreach (var node in types)
            {
                var text = node is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
                sliding.Add(text switch
                {
                    "full_attention" => false,
                    "sliding_attention" => true,
                    _ => throw new InvalidInputException($"{source}: layer_types entry '{node?.ToJsonString()}' is not supported (full_attention, sliding_attention)"),
                });
            }

            if (sliding.Contains(true) && window is null)
            {
                throw new InvalidInputException($"{source}: layer_types names sliding_attention layers but sliding_window is null");
            }

            return (window, sliding);
        }

        var firstSliding = modelType == "mistral" ? 0 : Int(source, json, "max_window_layers") ?? 28;
        return (window, Enumerable.Range(0, Math.Max(layers, 0)).Select(i => window is not null && i >= firstSliding).ToList());
    }

    private static JsonObject? Object(string source, JsonObject json, string key) => json[key] switch
    {
        null => null,
        JsonObject o => o,
        var other => throw Malformed(source, key, other, "an object"),
    };

    private static string? String(string source, JsonObject json, string key, string? prefix = null) => json[key] switch
    {
        null => null,
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        var other => throw Malformed(source, Key(prefix, key), other, "a string"),
    };

    private static bool? Bool(string source, JsonObject json, string key) => json[key] switch
    {
        null => null,
        JsonValue v when v.TryGetValue<bool>(out var b) => b,
        var other => throw Malformed(source, key, other, "true or false"),
    };

    private static double? Double(string source, JsonObject json, string key, string? prefix = null) => json[key] switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.Number => double.Parse(v.ToJsonString(), CultureInfo.InvariantCulture),
        var other => throw Malformed(source, Key(prefix, key), other, "a number"),
    };

    private static long? Long(string source, JsonObject json, string key) => json[key] switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.Number && long.TryParse(v.ToJsonString(), CultureInfo.InvariantCulture, out var l) => l,
        JsonValue v when v.GetValueKind() == JsonValueKind.Number
            && double.Parse(v.ToJsonString(), CultureInfo.InvariantCulture) is var d && d == Math.Floor(d) && Math.Abs(d) < 1e15 => (long)d,
        var other => throw Malformed(source, key, other, "an integer"),
    };

    private static int? Int(string source, JsonObject json, string key) => Long(source, json, key) switch
    {
        null => null,
        var l when l is >= int.MinValue and <= int.MaxValue => (int)l,
        var l => throw new InvalidInputException($"{source}: {key} {l} is out of range"),
    };

    private static IReadOnlyList<long>? TokenIds(string source, JsonObject json, string key)
    {
        if (json[key] is JsonArray array)
        {
            return array.Select(node => node is JsonValue v && long.TryParse(v.ToJsonString(), CultureInfo.InvariantCulture, out var id)
                ? id
                : throw Malformed(source, key, node, "an integer or a list of integers")).ToList();
        }

        return Long(source, json, key) is { } single ? [single] : null;
    }

    private static string Key(string? prefix, string key) => prefix is null ? key : $"{prefix}.{key}";

    private static InvalidInputException Malformed(string source, string key, JsonNode? value, string expected) =>
        new($"{source}: {key} must be {expected}, got {value?.ToJsonString() ?? "null"}");

    private static string OneLine(string text) => text.ReplaceLineEndings(" ");
}
