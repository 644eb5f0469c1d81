using System.Text.Json;
using System.Text.Json.Nodes;

namespace DistributedInference.Models.Gpt2;

/// <summary>GPT-2 hyper-parameters, as Hugging Face's <c>config.json</c> names them.</summary>
public sealed record Gpt2Config
{
    public int VocabSize { get; init; } = 50257;

    public int MaxPositions { get; init; } = 1024;

    public int EmbeddingSize { get; init; } = 768;

    public int LayerCount { get; init; } = 12;

    public int HeadCount { get; init; } = 12;

    /// <summary>Width of the MLP; config.json's <c>n_inner</c>, 4 x n_embd when null.</summary>
    public int InnerSize { get; init; } = 3072;

    public double LayerNormEpsilon { get; init; } = 1e-5;

    public string Activation { get; init; } = "gelu_new";

    public int LabelCount { get; init; } = 2;

    public IReadOnlyList<string> LabelNames { get; init; } = ["LABEL_0", "LABEL_1"];

    public long? PadTokenId { get; init; }

    public long? EosTokenId { get; init; } = 50256;

    public bool TieWordEmbeddings { get; init; } = true;

    public int HeadSize => EmbeddingSize / HeadCount;

    /// <summary>The built-in configurations a model name on the command line may refer to.</summary>
    public static IReadOnlyDictionary<string, Gpt2Config> BuiltIn { get; } = new Dictionary<string, Gpt2Config>(StringComparer.OrdinalIgnoreCase)
    {
        ["gpt2"] = Sized(12, 768, 12),
        ["gpt2-medium"] = Sized(24, 1024, 16),
        ["gpt2-large"] = Sized(36, 1280, 20),
        ["gpt2-xl"] = Sized(48, 1600, 25),
        // GPT-2's vocabulary and tokenizer on a model small enough for tests and a 2-core CPU.
        ["gpt2-tiny"] = Sized(2, 64, 4) with { MaxPositions = 256 },
    };

    /// <summary>Reads a Hugging Face <c>config.json</c> and rejects GPT-2 variants this implementation does not run.</summary>
    public static Gpt2Config FromJson(string path)
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
            throw new InvalidInputException($"{path}: not valid JSON ({e.Message})", e);
        }

        try
        {
            return FromJson(path, json);
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            throw new InvalidInputException($"{path}: malformed value ({e.Message})", e);
        }
    }

    private static Gpt2Config FromJson(string path, JsonObject json)
    {
        var modelType = json["model_type"]?.GetValue<string>();
        if (modelType is not null && modelType != "gpt2")
        {
            throw new InvalidInputException($"{path}: model_type '{modelType}' is not supported (only gpt2)");
        }

        foreach (var flag in new[] { "scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn", "add_cross_attention" })
        {
            if (json[flag]?.GetValue<bool>() == true)
            {
                throw new InvalidInputException($"{path}: {flag} = true is not supported");
            }
        }

        if (json["scale_attn_weights"]?.GetValue<bool>() == false)
        {
            throw new InvalidInputException($"{path}: scale_attn_weights = false is not supported");
        }

        var embd = Int(json, "n_embd", 768);
        var labelNames = (json["id2label"] as JsonObject)?
            .OrderBy(p => int.Parse(p.Key, System.Globalization.CultureInfo.InvariantCulture))
            .Select(p => p.Value!.GetValue<string>()).ToList();
        var labels = json["num_labels"]?.GetValue<int>() ?? labelNames?.Count ?? 2;
        labelNames ??= Enumerable.Range(0, labels).Select(i => $"LABEL_{i}").ToList();

        var config = new Gpt2Config
        {
            VocabSize = Int(json, "vocab_size", 50257),
            MaxPositions = Int(json, "n_positions", 1024),
            EmbeddingSize = embd,
            LayerCount = Int(json, "n_layer", 12),
            HeadCount = Int(json, "n_head", 12),
            InnerSize = json["n_inner"]?.GetValue<int>() ?? 4 * embd,
            LayerNormEpsilon = json["layer_norm_epsilon"]?.GetValue<double>() ?? 1e-5,
            Activation = json["activation_function"]?.GetValue<string>() ?? "gelu_new",
            LabelCount = labels,
            LabelNames = labelNames,
            PadTokenId = json["pad_token_id"]?.GetValue<long>(),
            EosTokenId = json["eos_token_id"]?.GetValue<long>(),
            TieWordEmbeddings = json["tie_word_embeddings"]?.GetValue<bool>() ?? true,
        };
        config.Validate(path);
        return config;
    }

    public void Validate(string source)
    {
        if (VocabSize <= 0 || MaxPositions <= 0 || EmbeddingSize <= 0 || LayerCount <= 0 || HeadCount <= 0 || InnerSize <= 0)
        {
            throw new InvalidInputException($"{source}: sizes must be positive");
        }

        if (EmbeddingSize % HeadCount != 0)
        {
            throw new InvalidInputException($"{source}: n_embd {EmbeddingSize} is not a multiple of n_head {HeadCount}");
        }

        if (Activation is not ("gelu_new" or "gelu_pytorch_tanh" or "gelu" or "relu"))
        {
            throw new InvalidInputException($"{source}: activation_function '{Activation}' is not supported");
        }
    }

    private static Gpt2Config Sized(int layers, int embd, int heads) =>
        new() { LayerCount = layers, EmbeddingSize = embd, HeadCount = heads, InnerSize = 4 * embd };

    private static int Int(JsonObject json, string key, int fallback) => json[key]?.GetValue<int>() ?? fallback;
}
