using System.Globalization;

namespace DistributedInference.Models.Diffusion;

/// <summary>
/// Hyper-parameters of a CLIP text encoder (transformers' <c>CLIPTextConfig</c>), read from a Stable Diffusion folder's
/// <c>text_encoder/config.json</c>; keys the file leaves out take transformers' defaults.
/// </summary>
public sealed record ClipTextConfig
{
    /// <summary>The activations transformers' <c>ACT2FN</c> gives these names, as CLIP text encoders use them.</summary>
    public static IReadOnlyList<string> SupportedActivations { get; } = ["quick_gelu", "gelu", "gelu_new", "gelu_pytorch_tanh"];

    /// <summary><c>vocab_size</c>: rows of the token embedding.</summary>
    public int VocabSize { get; init; } = 49408;

    /// <summary><c>hidden_size</c>: width of the hidden states (SD 1.x 768, SD 2.x 1024).</summary>
    public int HiddenSize { get; init; } = 512;

    /// <summary><c>intermediate_size</c>: width of the MLP.</summary>
    public int IntermediateSize { get; init; } = 2048;

    /// <summary><c>num_hidden_layers</c>.</summary>
    public int LayerCount { get; init; } = 12;

    /// <summary><c>num_attention_heads</c>.</summary>
    public int HeadCount { get; init; } = 8;

    /// <summary><c>max_position_embeddings</c>: rows of the position embedding (77).</summary>
    public int MaxPositions { get; init; } = 77;

    /// <summary><c>hidden_act</c>: <c>quick_gelu</c> (x·sigmoid(1.702x), SD 1.x) or <c>gelu</c> (exact, SD 2.x).</summary>
    public string HiddenAct { get; init; } = "quick_gelu";

    /// <summary><c>layer_norm_eps</c>.</summary>
    public double LayerNormEps { get; init; } = 1e-5;

    /// <summary>Width of one attention head.</summary>
    public int HeadDim => HiddenSize / HeadCount;

    /// <exception cref="InvalidInputException">One line naming the file and the key at fault.</exception>
    public static ClipTextConfig FromJson(string path) => Read(ConfigJson.Load(path));

    internal static ClipTextConfig Read(ConfigJson json)
    {
        var defaults = new ClipTextConfig();
        var config = new ClipTextConfig
        {
            VocabSize = json.Int("vocab_size") ?? defaults.VocabSize,
            HiddenSize = json.Int("hidden_size") ?? defaults.HiddenSize,
            IntermediateSize = json.Int("intermediate_size") ?? defaults.IntermediateSize,
            LayerCount = json.Int("num_hidden_layers") ?? defaults.LayerCount,
            HeadCount = json.Int("num_attention_heads") ?? defaults.HeadCount,
            MaxPositions = json.Int("max_position_embeddings") ?? defaults.MaxPositions,
            HiddenAct = json.String("hidden_act") ?? defaults.HiddenAct,
            LayerNormEps = json.Double("layer_norm_eps") ?? defaults.LayerNormEps,
        };
        if (json.String("model_type") is { } type && type is not ("clip_text_model" or "clip"))
        {
            throw json.Unsupported("model_type", "a CLIPTextModel: clip_text_model");
        }

        if (!SupportedActivations.Contains(config.HiddenAct))
        {
            throw json.Unsupported("hidden_act", string.Join(", ", SupportedActivations));
        }

        return config.Validate(json.Source);
    }

    /// <summary>Fails with one line naming the first impossible value; returns the config itself.</summary>
    /// <exception cref="InvalidInputException">A non-positive size, or hidden_size not a multiple of the heads.</exception>
    public ClipTextConfig Validate(string source)
    {
        foreach (var (key, value) in new[]
        {
            ("vocab_size", (double)VocabSize), ("hidden_size", HiddenSize), ("intermediate_size", IntermediateSize),
            ("num_hidden_layers", LayerCount), ("num_attention_heads", HeadCount), ("max_position_embeddings", MaxPositions),
            ("layer_norm_eps", LayerNormEps),
        })
        {
            if (!(value > 0))
            {
                throw new InvalidInputException($"{source}: {key} must be positive, got {value.ToString(CultureInfo.InvariantCulture)}");
            }
        }

        if (HiddenSize % HeadCount != 0)
        {
            throw new InvalidInputException($"{source}: hidden_size {HiddenSize} is not a multiple of num_attention_heads {HeadCount}");
        }

        return this;
    }
}
