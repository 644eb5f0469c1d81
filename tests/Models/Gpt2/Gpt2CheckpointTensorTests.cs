using System.Text.Json.Nodes;
using DistributedInference.Models.Auto;
using DistributedInference.Models.Gpt2;
using DistributedInference.Models.Loading;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tests.Gpt2;

/// <summary>A GPT-2 folder's tensors are all used or reported, as a Llama folder's are, whole model or staged view.</summary>
public sealed class Gpt2CheckpointTensorTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("di-gpt2-tensors-").FullName;

    public Gpt2CheckpointTensorTests() => LibTorch.Initialize();

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private string CopyOf(string fixture, Action<JsonObject>? config = null, Action<Dictionary<string, Tensor>>? weights = null)
    {
        foreach (var file in Directory.GetFiles(fixture))
        {
            File.Copy(file, Path.Combine(_folder, Path.GetFileName(file)));
        }

        if (config is not null)
        {
            var path = Path.Combine(_folder, "config.json");
            var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
            config(json);
            File.WriteAllText(path, json.ToJsonString());
        }

        if (weights is not null)
        {
            var path = Path.Combine(_folder, "model.safetensors");
            var tensors = SafeTensorsFile.ReadAll(path);
            weights(tensors);
            SafeTensorsFile.Write(path, tensors, new Dictionary<string, string> { ["format"] = "pt" });
        }

        return _folder;
    }

    private static string OneLine(Action action)
    {
        var error = Assert.Throws<InvalidInputException>(action);
        Assert.DoesNotContain('\n', error.Message);
        return error.Message;
    }

    private static void Staged(string folder, InferenceTask task)
    {
        var staged = AutoModelSource.Resolve(folder, 0).LoadStaged(task);
        (staged as IDisposable)?.Dispose();
    }

    [Fact]
    public void Fewer_layers_in_config_than_in_the_checkpoint_are_refused_whole_and_staged()
    {
        var folder = CopyOf(Fixtures.TinyLanguageModel, config: c => c["n_layer"] = 1);
        Assert.Contains("unexpected tensor transformer.h.1.", OneLine(() => Gpt2Source.Resolve(folder).CreateLanguageModel(CPU, ScalarType.Float32).Dispose()), StringComparison.Ordinal);
        Assert.Contains("unexpected tensor transformer.h.1.", OneLine(() => Staged(folder, InferenceTask.Logits)), StringComparison.Ordinal);
    }

    [Fact]
    public void More_layers_in_config_than_in_the_checkpoint_are_refused_before_any_stage_loads()
    {
        var folder = CopyOf(Fixtures.TinyLanguageModel, config: c => c["n_layer"] = 3);
        Assert.Contains("checkpoint has no tensor for transformer.h.2.", OneLine(() => Staged(folder, InferenceTask.Logits)), StringComparison.Ordinal);
    }

    [Fact]
    public void A_stray_tensor_is_refused()
    {
        var folder = CopyOf(Fixtures.TinyClassifier, weights: w => w["transformer.extra.weight"] = zeros(3));
        Assert.Contains("unexpected tensor transformer.extra.weight", OneLine(() => Gpt2Source.Resolve(folder).CreateClassifier(CPU, ScalarType.Float32).Dispose()), StringComparison.Ordinal);
        Assert.Contains("unexpected tensor transformer.extra.weight", OneLine(() => Staged(folder, InferenceTask.Classify)), StringComparison.Ordinal);
    }

    [Fact]
    public void A_classifier_folder_still_runs_its_language_model_and_attention_buffers_are_ignored()
    {
        var folder = CopyOf(Fixtures.TinyClassifier, weights: w => w["transformer.h.0.attn.bias"] = ones(1, 1, 4, 4));
        Gpt2Source.Resolve(folder).CreateLanguageModel(CPU, ScalarType.Float32).Dispose();
        Gpt2Source.Resolve(folder).CreateClassifier(CPU, ScalarType.Float32).Dispose();
        Staged(folder, InferenceTask.Logits);
        Staged(folder, InferenceTask.Classify);
    }
}
