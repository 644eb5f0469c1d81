using System.Text.Json;
using DistributedInference.Models.Gpt2;
using DistributedInference.Models.Loading;
using DistributedInference.Models.Runtime;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tests.Loading;

public sealed class HuggingFaceCheckpointTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("di-checkpoint-").FullName;

    public HuggingFaceCheckpointTests() => LibTorch.Initialize();

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void Sharded_checkpoints_with_old_style_keys_load_like_the_single_file()
    {
        var tensors = SafeTensorsFile.ReadAll(Path.Combine(Fixtures.TinyLanguageModel, "model.safetensors"));
        var names = tensors.Keys.Order().ToList();
        var weightMap = new Dictionary<string, string>();
        for (var shard = 0; shard < 2; shard++)
        {
            var file = $"model-0000{shard + 1}-of-00002.safetensors";
            // Older GPT-2 uploads store keys without the "transformer." prefix.
            var part = names.Where((_, i) => i % 2 == shard).ToDictionary(n => n.Replace("transformer.", string.Empty, StringComparison.Ordinal), n => tensors[n]);
            SafeTensorsFile.Write(Path.Combine(_folder, file), part);
            foreach (var key in part.Keys)
            {
                weightMap[key] = file;
            }
        }

        File.WriteAllText(Path.Combine(_folder, "model.safetensors.index.json"), JsonSerializer.Serialize(new { weight_map = weightMap }));
        File.Copy(Path.Combine(Fixtures.TinyLanguageModel, "config.json"), Path.Combine(_folder, "config.json"));

        using var model = Gpt2Source.Resolve(_folder).CreateLanguageModel(CPU, ScalarType.Float32);
        using var logits = model.Logits(Fixtures.Expected("input_ids"));
        Fixtures.AssertClose(Fixtures.Expected("lm_logits"), logits);
    }

    [Fact]
    public void A_folder_without_weights_is_a_clear_error()
    {
        File.Copy(Path.Combine(Fixtures.TinyLanguageModel, "config.json"), Path.Combine(_folder, "config.json"));
        File.WriteAllText(Path.Combine(_folder, "pytorch_model.bin"), string.Empty);
        var error = Assert.Throws<InvalidInputException>(() => Gpt2Source.Resolve(_folder));
        Assert.Contains("only safetensors weights are read", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Weights_that_do_not_fit_the_config_are_a_clear_error()
    {
        var config = File.ReadAllText(Path.Combine(Fixtures.TinyLanguageModel, "config.json")).Replace("\"n_embd\": 64", "\"n_embd\": 32", StringComparison.Ordinal);
        File.WriteAllText(Path.Combine(_folder, "config.json"), config);
        File.Copy(Path.Combine(Fixtures.TinyLanguageModel, "model.safetensors"), Path.Combine(_folder, "model.safetensors"));
        var error = Assert.Throws<InvalidInputException>(() => Gpt2Source.Resolve(_folder).CreateLanguageModel(CPU, ScalarType.Float32));
        Assert.Contains("but the config needs", error.Message, StringComparison.Ordinal);
    }
}
