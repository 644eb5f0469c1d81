using System.Text.Json.Nodes;
using DistributedInference.Models.Llama;
using DistributedInference.Models.Loading;
using DistributedInference.Models.Runtime;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tests.Llama;

/// <summary>Broken folders and configs end in one clear line naming the key, tensor or file at fault.</summary>
public sealed class LlamaBadInputTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "llama-bad-" + Guid.NewGuid().ToString("N"));

    public LlamaBadInputTests() => LibTorch.Initialize();

    public void Dispose()
    {
        if (Directory.Exists(_folder))
        {
            Directory.Delete(_folder, recursive: true);
        }
    }

    private string CopyOf(string fixture)
    {
        Directory.CreateDirectory(_folder);
        foreach (var file in Directory.GetFiles(LlamaFixtures.ModelFolder(fixture)))
        {
            File.Copy(file, Path.Combine(_folder, Path.GetFileName(file)));
        }

        return _folder;
    }

    private void EditConfig(Action<JsonObject> edit)
    {
        var path = Path.Combine(_folder, "config.json");
        var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(json);
        File.WriteAllText(path, json.ToJsonString());
    }

    private void EditWeights(Action<Dictionary<string, Tensor>> edit)
    {
        var path = Path.Combine(_folder, "model.safetensors");
        var tensors = SafeTensorsFile.ReadAll(path);
        edit(tensors);
        SafeTensorsFile.Write(path, tensors, new Dictionary<string, string> { ["format"] = "pt" });
    }

    private static string OneLineError(Action action)
    {
        var error = Assert.Throws<InvalidInputException>(action);
        Assert.DoesNotContain('\n', error.Message);
        return error.Message;
    }

    private void Load() => LlamaSource.Resolve(_folder).CreateModel(CPU, ScalarType.Float32).Dispose();

    [Fact]
    public void Unknown_model_type()
    {
        CopyOf("qwen2-tiny");
        EditConfig(j => j["model_type"] = "gemma");
        Assert.Contains("model_type 'gemma' is not supported (supported: llama, mistral, qwen2, qwen3)", OneLineError(Load));
    }

    [Fact]
    public void Rope_type_yarn_in_v4_rope_scaling()
    {
        CopyOf("llama3-tiny");
        EditConfig(j => j["rope_scaling"]!["rope_type"] = "yarn");
        Assert.Contains("rope_type 'yarn' is not supported (supported: default, llama3)", OneLineError(Load));
    }

    [Fact]
    public void Legacy_type_key_and_v5_rope_parameters_are_read_too()
    {
        CopyOf("qwen3-tiny");
        EditConfig(j => j["rope_parameters"] = new JsonObject { ["rope_theta"] = 1e6, ["rope_type"] = "linear", ["factor"] = 2.0 });
        Assert.Contains("rope_type 'linear' is not supported", OneLineError(Load));

        EditConfig(j =>
        {
            j.Remove("rope_parameters");
            j["rope_scaling"] = new JsonObject { ["type"] = "dynamic", ["factor"] = 2.0 };
        });
        Assert.Contains("rope_type 'dynamic' is not supported", OneLineError(Load));
    }

    [Fact]
    public void Llama3_rope_scaling_without_its_factors()
    {
        CopyOf("llama3-tiny");
        EditConfig(j => j["rope_scaling"]!.AsObject().Remove("low_freq_factor"));
        Assert.Contains("rope_scaling.low_freq_factor is required", OneLineError(Load));
    }

    [Theory]
    [InlineData("num_key_value_heads", 3, "num_attention_heads 4 is not a multiple of num_key_value_heads 3")]
    [InlineData("hidden_size", 0, "hidden_size must be positive")]
    [InlineData("num_hidden_layers", -1, "num_hidden_layers must be positive")]
    [InlineData("head_dim", 15, "head_dim 15 must be even")]
    public void Impossible_sizes_name_their_key(string key, int value, string message)
    {
        CopyOf("mistral-tiny");
        EditConfig(j => j[key] = value);
        Assert.Contains(message, OneLineError(Load));
    }

    [Fact]
    public void Missing_tensor()
    {
        CopyOf("qwen2-tiny");
        EditWeights(t => t.Remove("model.layers.1.self_attn.k_proj.bias"));
        Assert.Contains("checkpoint has no tensor model.layers.1.self_attn.k_proj.bias", OneLineError(Load));
    }

    [Fact]
    public void Untied_config_without_lm_head_is_a_missing_tensor()
    {
        CopyOf("mistral-tiny");
        EditWeights(t => t.Remove("lm_head.weight"));
        Assert.Contains("checkpoint has no tensor lm_head.weight", OneLineError(Load));
    }

    [Fact]
    public void Wrong_shape()
    {
        CopyOf("qwen2-tiny");
        EditWeights(t => t["model.layers.0.mlp.up_proj.weight"] = zeros(175, 64));
        Assert.Contains("model.layers.0.mlp.up_proj.weight is [175, 64] but the config needs [176, 64]", OneLineError(Load));
    }

    [Fact]
    public void Unexpected_tensor()
    {
        CopyOf("qwen2-tiny");
        EditWeights(t => t["model.layers.0.self_attn.o_proj.bias"] = zeros(64));
        Assert.Contains("unexpected tensor model.layers.0.self_attn.o_proj.bias", OneLineError(Load));
    }

    [Fact]
    public void Ignorable_rotary_buffers_are_accepted()
    {
        CopyOf("qwen2-tiny");
        EditWeights(t => t["model.layers.0.self_attn.rotary_emb.inv_freq"] = zeros(8));
        Load();
    }

    [Fact]
    public void Missing_shard()
    {
        CopyOf("llama3-tiny");
        File.Delete(Path.Combine(_folder, "model-00002-of-00002.safetensors"));
        Assert.Contains("shard model-00002-of-00002.safetensors", OneLineError(Load));
    }

    [Fact]
    public void Unknown_names_are_not_built_ins()
    {
        Assert.Contains("unknown model 'llama-9b'", OneLineError(() => LlamaSource.Resolve("llama-9b")));
    }

    [Fact]
    public void Token_ids_outside_the_vocabulary_are_rejected()
    {
        using var model = LlamaSource.Resolve("llama-tiny").CreateModel(CPU, ScalarType.Float32);
        using var ids = tensor(new[] { 1L, 640L }, [1, 2]);
        Assert.Contains("outside the model's vocabulary [0, 640)", OneLineError(() => model.Logits(ids).Dispose()));
    }
}
