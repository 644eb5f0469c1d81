using DistributedInference.Models.Llama;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Staging;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tests.Llama;

public sealed class LlamaStagedModelTests
{
    public LlamaStagedModelTests() => LibTorch.Initialize();

    private static LlamaStagedModel Staged(string name) => new(LlamaSource.Resolve(LlamaFixtures.ModelFolder(name)));

    [Fact]
    public void Names_layers_in_order_with_sizes_that_add_up_to_the_model()
    {
        var staged = Staged("llama3-tiny");
        Assert.Equal(["embed_tokens", "layers.0", "layers.1", "layers.2", "norm+lm_head"], staged.Layers.Select(l => l.Name));
        Assert.All(staged.Layers, l => Assert.True(l.ParameterBytes == 4 * l.ParameterCount && l.ParameterCount > 0));
        Assert.Equal(0, staged.Layers[0].FlopsPerToken);
        Assert.Equal(2L * 640 * 64, staged.Layers[^1].FlopsPerToken);

        using var model = LlamaSource.Resolve(LlamaFixtures.ModelFolder("llama3-tiny")).CreateModel(CPU, ScalarType.Float32);
        var modelCount = model.parameters().Sum(p => p.NumberOfElements);
        // The tied head is counted in the model once and in the staged view twice (the last stage holds its own copy).
        Assert.Equal(modelCount + (640 * 64), staged.Layers.Sum(l => l.ParameterCount));
    }

    [Theory]
    [MemberData(nameof(LlamaFixtures.Names), MemberType = typeof(LlamaFixtures))]
    public void Each_layer_run_as_its_own_stage_reproduces_hidden_states_and_logits(string name)
    {
        var staged = Staged(name);
        var ids = LlamaFixtures.Expected(name, "input_ids");
        var mask = LlamaFixtures.Expected(name, "attention_mask");
        var batch = StagedBatch.FromTokens(ids, mask);
        for (var i = 0; i < staged.Layers.Count; i++)
        {
            using var stage = staged.CreateStage(i, 1, CPU, ScalarType.Float32);
            batch = stage.Run(batch);
            var expected = i < staged.Layers.Count - 1 ? $"hidden_{i}" : "logits";
            LlamaFixtures.AssertCloseAtRealPositions(LlamaFixtures.Expected(name, expected), batch.Hidden, mask);
        }
    }

    [Fact]
    public void Two_stages_of_several_layers_give_the_logits()
    {
        const string name = "qwen3-tiny";
        var staged = Staged(name);
        var mask = LlamaFixtures.Expected(name, "attention_mask");
        using var front = staged.CreateStage(0, 2, CPU, ScalarType.Float32);
        using var back = staged.CreateStage(2, staged.Layers.Count - 2, CPU, ScalarType.Float32);
        var middle = front.Run(StagedBatch.FromTokens(LlamaFixtures.Expected(name, "input_ids"), mask));
        LlamaFixtures.AssertCloseAtRealPositions(LlamaFixtures.Expected(name, "hidden_1"), middle.Hidden, mask);
        LlamaFixtures.AssertCloseAtRealPositions(LlamaFixtures.Expected(name, "logits"), back.Run(middle).Hidden, mask);
    }

    [Fact]
    public void Built_in_stages_get_the_same_random_weights_as_the_whole_model()
    {
        var source = LlamaSource.Resolve("llama-tiny", seed: 3);
        using var model = source.CreateModel(CPU, ScalarType.Float32);
        var staged = new LlamaStagedModel(source);
        using var whole = staged.CreateStage(0, staged.Layers.Count, CPU, ScalarType.Float32);
        using var ids = tensor(new long[] { 5, 17, 300, 2, 9 }, [1, 5]);
        using var expected = model.Logits(ids);
        Fixtures.AssertClose(expected, whole.Run(StagedBatch.FromTokens(ids)).Hidden, 1e-6);
    }
}
