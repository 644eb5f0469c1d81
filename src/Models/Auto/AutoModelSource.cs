using System.Text.Json;
using System.Text.Json.Nodes;
using DistributedInference.Models.Bert;
using DistributedInference.Models.Diffusion;
using DistributedInference.Models.Gpt2;
using DistributedInference.Models.Llama;

namespace DistributedInference.Models.Auto;

/// <summary>
/// Resolves a model name to its family, as transformers' <c>AutoConfig</c> does: a folder by its <c>config.json</c>'s
/// <c>model_type</c> (a diffusers pipeline folder by its <c>model_index.json</c>), else a built-in configuration by name.
/// </summary>
public static class AutoModelSource
{
    /// <summary>The <c>model_type</c>s a folder may have.</summary>
    public static IReadOnlyList<string> ModelTypes { get; } = ["gpt2", .. LlamaConfig.SupportedModelTypes, "bert"];

    /// <summary>Every built-in name, family by family.</summary>
    public static IReadOnlyList<string> BuiltIns => [.. Gpt2Config.BuiltIn.Keys, .. LlamaConfig.BuiltIn.Keys, .. BertSource.BuiltIn.Keys, .. StableDiffusionSource.BuiltIn];

    /// <param name="model">A Hugging Face model folder, or a built-in name (see <see cref="BuiltIns"/>).</param>
    /// <param name="seed">Seed of a built-in's random weights.</param>
    /// <exception cref="InvalidInputException">Neither a folder nor a built-in, or a folder of an unsupported model_type.</exception>
    public static IModelSource Resolve(string model, long seed = 0)
    {
        if (Directory.Exists(model) && StableDiffusionSource.IsPipelineFolder(model))
        {
            return new StableDiffusionModelSource(StableDiffusionSource.Resolve(model, seed));
        }

        if (Directory.Exists(model))
        {
            var type = ModelType(model);
            return type switch
            {
                "gpt2" => new Gpt2ModelSource(Gpt2Source.Resolve(model, seed)),
                "bert" => new BertModelSource(BertSource.Resolve(model, seed)),
                _ when LlamaConfig.SupportedModelTypes.Contains(type) => new LlamaModelSource(LlamaSource.Resolve(model, seed)),
                _ => throw new InvalidInputException(
                    $"{model}: model_type '{type}' is not supported (supported: {string.Join(", ", ModelTypes)})"),
            };
        }

        if (Gpt2Config.BuiltIn.ContainsKey(model))
        {
            return new Gpt2ModelSource(Gpt2Source.Resolve(model, seed));
        }

        if (LlamaConfig.BuiltIn.ContainsKey(model))
        {
            return new LlamaModelSource(LlamaSource.Resolve(model, seed));
        }

        if (BertSource.BuiltIn.ContainsKey(model))
        {
            return new BertModelSource(BertSource.Resolve(model, seed));
        }

        if (StableDiffusionSource.BuiltIn.Contains(model, StringComparer.OrdinalIgnoreCase))
        {
            return new StableDiffusionModelSource(StableDiffusionSource.Resolve(model, seed));
        }

        throw new InvalidInputException($"unknown model '{model}': not a folder, and not a built-in ({string.Join(", ", BuiltIns)})");
    }

    /// <summary>The <c>model_type</c> of a folder's <c>config.json</c>.</summary>
    /// <exception cref="InvalidInputException">No config.json, not JSON, or no model_type.</exception>
    public static string ModelType(string folder)
    {
        var path = Path.Combine(folder, "config.json");
        if (!File.Exists(path))
        {
            throw new InvalidInputException($"{folder}: no config.json (expected a Hugging Face model folder)");
        }

        try
        {
            return (JsonNode.Parse(File.ReadAllText(path)) as JsonObject)?["model_type"]?.GetValue<string>()
                ?? throw new InvalidInputException($"{path}: no model_type");
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            throw new InvalidInputException($"{path}: not a valid config ({e.Message.Split('\n')[0]})", e);
        }
    }
}
