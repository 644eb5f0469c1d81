using System.Text.Json;
using System.Text.Json.Nodes;

namespace DistributedInference.Models.Bert;

/// <summary>
/// BERT hyper-parameters as transformers' <c>BertConfig</c> names and defaults them (<c>config.json</c> with
/// <c>model_type: bert</c>). Only absolute position embeddings and encoder-only BERT are supported.
/// </summary>
public sealed record BertConfig
{
    /// <summary><c>vocab_size</c>: rows of the word embedding.</summary>
    public int VocabSize { get; init; } = 30522;

    /// <summary><c>hidden_size</c>.</summary>
    public int HiddenSize { get; init; } = 768;

    /// <summary><c>num_hidden_layers</c>: encoder layers.</summary>
    public int LayerCount { get; init; } = 12;

    /// <summary><c>num_attention_heads</c>.</summary>
    public int HeadCount { get; init; } = 12;

    /// <summary><c>intermediate_size</c>: width of each layer's feed-forward part.</summary>
    public int IntermediateSize { get; init; } = 3072;

    /// <summary><c>hidden_act</c>: <c>gelu</c> (exact, erf), <c>gelu_new</c>/<c>gelu_pytorch_tanh</c> (tanh form), <c>relu</c>, <c>silu</c>.</summary>
    public string Activation { get; init; } = "gelu";

    /// <summary><c>max_position_embeddings</c>: the longest sequence the model embeds.</summary>
    public int MaxPositions { get; init; } = 512;

    /// <summary><c>type_vocab_size</c>: rows of the token-type (segment) embedding.</summary>
    public int TypeVocabSize { get; init; } = 2;

    /// <summary><c>layer_norm_eps</c>.</summary>
    public double LayerNormEpsilon { get; init; } = 1e-12;

    /// <summary><c>initializer_range</c>: standard deviation of randomly initialised weights.</summary>
    public double InitializerRange { get; init; } = 0.02;

    /// <summary><c>pad_token_id</c> (0 by default; null when config.json says null).</summary>
    public long? PadTokenId { get; init; } = 0;

    /// <summary>Width of one attention head: hidden_size / num_attention_heads.</summary>
    public int HeadSize => HiddenSize / HeadCount;

    /// <summary>Reads a Hugging Face <c>config.json</c>.</summary>
    /// <exception cref="InvalidInputException">The file is missing or not JSON, its model_type is not bert, a key holds a
    /// malformed or impossible value (the message names the key), or it asks for a variant not implemented here
    /// (relative position embeddings, a decoder).</exception>
    public static BertConfig FromJson(string path)
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
            throw new InvalidInputException($"{path}: not valid JSON ({e.Message.Split('\n')[0]})", e);
        }

        var modelType = Read(path, json, "model_type", n => n.GetValue<string>());
        if (modelType is not null && modelType != "bert")
        {
            throw new InvalidInputException($"{path}: model_type '{modelType}' is not bert");
        }

        var positions = Read(path, json, "position_embedding_type", n => n.GetValue<string>()) ?? "absolute";
        if (positions != "absolute")
        {
            throw new InvalidInputException(
                $"{path}: position_embedding_type '{positions}' is not supported (only absolute position embeddings)");
        }

        foreach (var flag in new[] { "is_decoder", "add_cross_attention" })
        {
            if (Read(path, json, flag, n => n.GetValue<bool>()) == true)
            {
                throw new InvalidInputException($"{path}: {flag} = true is not supported (encoder-only BERT)");
            }
        }

        var config = new BertConfig
        {
            VocabSize = Read(path, json, "vocab_size", n => n.GetValue<int>()) ?? 30522,
            HiddenSize = Read(path, json, "hidden_size", n => n.GetValue<int>()) ?? 768,
            LayerCount = Read(path, json, "num_hidden_layers", n => n.GetValue<int>()) ?? 12,
            HeadCount = Read(path, json, "num_attention_heads", n => n.GetValue<int>()) ?? 12,
            IntermediateSize = Read(path, json, "intermediate_size", n => n.GetValue<int>()) ?? 3072,
            Activation = Read(path, json, "hidden_act", n => n.GetValue<string>()) ?? "gelu",
            MaxPositions = Read(path, json, "max_position_embeddings", n => n.GetValue<int>()) ?? 512,
            TypeVocabSize = Read(path, json, "type_vocab_size", n => n.GetValue<int>()) ?? 2,
            LayerNormEpsilon = Read(path, json, "layer_norm_eps", n => n.GetValue<double>()) ?? 1e-12,
            InitializerRange = Read(path, json, "initializer_range", n => n.GetValue<double>()) ?? 0.02,
            PadTokenId = json.ContainsKey("pad_token_id") ? Read(path, json, "pad_token_id", n => n.GetValue<long>()) : 0,
        };
        config.Validate(path);
        return config;
    }

    /// <summary>Rejects impossible values, naming the config.json key at fault.</summary>
    /// <exception cref="InvalidInputException">A size is not positive, hidden_size is not a multiple of
    /// num_attention_heads, layer_norm_eps is not positive, pad_token_id is outside the vocabulary, or hidden_act is
    /// not supported.</exception>
    public void Validate(string source)
    {
        foreach (var (key, value) in new[]
                 {
                     ("vocab_size", VocabSize), ("hidden_size", HiddenSize), ("num_hidden_layers", LayerCount),
                     ("num_attention_heads", HeadCount), ("intermediate_size", IntermediateSize),
                     ("max_position_embeddings", MaxPositions), ("type_vocab_size", TypeVocabSize),
                 })
        {
            if (value <= 0)
            {
                throw new InvalidInputException($"{source}: {key} must be positive, got {value}");
            }
        }

        if (HiddenSize % HeadCount != 0)
        {
            throw new InvalidInputException($"{source}: hidden_size {HiddenSize} is not a multiple of num_attention_heads {HeadCount}");
        }

        if (!(LayerNormEpsilon > 0) || !(InitializerRange >= 0))
        {
            throw new InvalidInputException(!(LayerNormEpsilon > 0)
                ? $"{source}: layer_norm_eps must be positive, got {LayerNormEpsilon}"
                : $"{source}: initializer_range must not be negative, got {InitializerRange}");
        }

        if (PadTokenId is { } pad && (pad < 0 || pad >= VocabSize))
        {
            throw new InvalidInputException($"{source}: pad_token_id {pad} is outside the vocabulary [0, {VocabSize})");
        }

        if (Activation is not ("gelu" or "gelu_new" or "gelu_pytorch_tanh" or "relu" or "silu" or "swish"))
        {
            throw new InvalidInputException($"{source}: hidden_act '{Activation}' is not supported (gelu, gelu_new, gelu_pytorch_tanh, relu, silu)");
        }
    }

    private static T? Read<T>(string path, JsonObject json, string key, Func<JsonNode, T> read)
        where T : struct
    {
        var node = json[key];
        try
        {
            return node is null ? null : read(node);
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            throw new InvalidInputException($"{path}: {key} has a malformed value {node!.ToJsonString()}", e);
        }
    }

    private static string? Read(string path, JsonObject json, string key, Func<JsonNode, string> read)
    {
        var node = json[key];
        try
        {
            return node is null ? null : read(node);
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            throw new InvalidInputException($"{path}: {key} has a malformed value {node!.ToJsonString()}", e);
        }
    }
}
