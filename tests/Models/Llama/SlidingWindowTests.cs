using System.Text.Json.Nodes;
using DistributedInference.Models.Llama;
using DistributedInference.Models.Loading;
using DistributedInference.Models.Runtime;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tests.Llama;

/// <summary>Mistral's sliding window: a position attends to itself and the window - 1 positions before it.</summary>
public sealed class SlidingWindowTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "llama-window-" + Guid.NewGuid().ToString("N"));

    public SlidingWindowTests() => LibTorch.Initialize();

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    /// <summary>mistral-tiny cut to one layer, so a window of w makes the last position depend on the last w tokens only.</summary>
    private LlamaForCausalLM OneLayerMistral(int? window)
    {
        var folder = Path.Combine(_folder, window?.ToString() ?? "full");
        Directory.CreateDirectory(folder);
        var source = LlamaFixtures.ModelFolder("mistral-tiny");
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(source, "config.json")))!.AsObject();
        config["num_hidden_layers"] = 1;
        config["sliding_window"] = window;
        File.WriteAllText(Path.Combine(folder, "config.json"), config.ToJsonString());
        var tensors = SafeTensorsFile.ReadAll(Path.Combine(source, "model.safetensors"))
            .Where(t => !t.Key.StartsWith("model.layers.1.", StringComparison.Ordinal))
            .ToDictionary(t => t.Key, t => t.Value);
        SafeTensorsFile.Write(Path.Combine(folder, "model.safetensors"), tensors);
        return LlamaSource.Resolve(folder).CreateModel(CPU, ScalarType.Float32);
    }

    [Fact]
    public void The_last_position_sees_only_the_window_and_cached_decoding_agrees()
    {
        using var windowed = OneLayerMistral(4);
        using var full = OneLayerMistral(null);
        using var ids = LlamaFixtures.Expected("mistral-tiny", "input_ids")[0..1, 0..10].clone();
        using var last4 = ids[.., 6..].clone();
        using var logits = windowed.Logits(ids);
        using var alone = full.Logits(last4);
        using var unwindowed = full.Logits(ids);
        Fixtures.AssertClose(alone[.., ^1], logits[.., ^1], 1e-5);
        Assert.True(Fixtures.MaxAbsDiff(unwindowed[.., ^1], logits[.., ^1]) > 1e-3);
        Fixtures.AssertClose(unwindowed[.., 0..4], logits[.., 0..4], 1e-5);

        // Decoding one token at a time through the cache applies the same window.
        using var cache = windowed.CreateCache(1, 10, CPU);
        using var noGrad = no_grad();
        using var prefix = windowed.NextTokenLogits(ids[.., 0..7], arange(7, ScalarType.Int64).unsqueeze(0), null, cache);
        for (var t = 7; t < 10; t++)
        {
            using var step = windowed.NextTokenLogits(ids[.., t..(t + 1)], tensor(new long[] { t }, [1, 1]), null, cache);
            Fixtures.AssertClose(logits[.., t], step, 1e-5);
        }
    }
}
