using System.Text.Json.Nodes;

namespace DistributedInference.Models.Llama;

/// <summary>
/// A <see cref="LlamaConfig"/> as the <c>config.json</c> transformers' <c>save_pretrained</c> writes (v4 keys:
/// <c>rope_theta</c> beside <c>rope_scaling</c>), which <see cref="LlamaConfig.FromJson(string)"/> reads back into an
/// equal config.
/// </summary>
public static class LlamaConfigJson
{
    /// <param name="config">The configuration.</param>
    /// <param name="dtype">The <c>torch_dtype</c> to record (the dtype of the stored weights), e.g. <c>bfloat16</c>.</param>
    /// <returns>A new JSON object the caller owns.</returns>
    public static JsonObject ToJson(LlamaConfig config, string? dtype = null)
    {
        var architecture = config.ModelType switch
        {
            "mistral" => "MistralForCausalLM",
            "qwen2" => "Qwen2ForCausalLM",
            "qwen3" => "Qwen3ForCausalLM",
            _ => "LlamaForCausalLM",
        };
        var json = new JsonObject
        {
            ["architectures"] = new JsonArray(architecture),
            ["model_type"] = config.ModelType,
            ["vocab_size"] = config.VocabSize,
            ["hidden_size"] = config.HiddenSize,
            ["intermediate_size"] = config.IntermediateSize,
            ["num_hidden_layers"] = config.LayerCount,
            ["num_attention_heads"] = config.HeadCount,
            ["num_key_value_heads"] = config.KeyValueHeadCount,
            ["head_dim"] = config.HeadDim,
            ["hidden_act"] = "silu",
            ["rms_norm_eps"] = config.RmsNormEps,
            ["max_position_embeddings"] = config.MaxPositions,
            ["rope_theta"] = config.Rope.Theta,
            ["tie_word_embeddings"] = config.TieWordEmbeddings,
        };
        if (config.Rope.Type == "llama3")
        {
            json["rope_scaling"] = new JsonObject
            {
                ["rope_type"] = "llama3",
                ["factor"] = config.Rope.Factor,
                ["low_freq_factor"] = config.Rope.LowFreqFactor,
                ["high_freq_factor"] = config.Rope.HighFreqFactor,
                ["original_max_position_embeddings"] = config.Rope.OriginalMaxPositions,
            };
        }

        if (config.ModelType == "llama")
        {
            json["attention_bias"] = config.QkvBias;
            json["mlp_bias"] = config.MlpBias;
        }

        if (config.ModelType is "qwen2" or "qwen3")
        {
            json["use_sliding_window"] = config.SlidingWindow is not null;
        }

        if (config.ModelType != "llama")
        {
            json["sliding_window"] = config.SlidingWindow;
        }

        if (config.SlidingWindow is not null)
        {
            json["layer_types"] = new JsonArray(config.SlidingLayers.Select(s => (JsonNode)(s ? "sliding_attention" : "full_attention")).ToArray());
        }

        json["torch_dtype"] = dtype ?? config.StoredDtype ?? "float32";
        if (config.BosTokenId is { } bos)
        {
            json["bos_token_id"] = bos;
        }

        json["eos_token_id"] = config.EosTokenIds.Count == 1
            ? config.EosTokenIds[0]
            : new JsonArray(config.EosTokenIds.Select(id => (JsonNode)id).ToArray());
        if (config.PadTokenId is { } pad)
        {
            json["pad_token_id"] = pad;
        }

        return json;
    }
}
