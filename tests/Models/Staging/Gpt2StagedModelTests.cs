using DistributedInference.Models.Gpt2;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Staging;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tests.Staging;

public sealed class Gpt2StagedModelTests
{
    public Gpt2StagedModelTests() => LibTorch.Initialize();

    private static Gpt2StagedModel Staged() =>
        new(Gpt2Source.Resolve(Fixtures.TinyLanguageModel).CreateLanguageModel(CPU, ScalarType.Float32));

    [Fact]
    public void Names_layers_in_order()
    {
        var staged = Staged();
        Assert.Equal(["wte+wpe", "h.0", "h.1", "ln_f+head"], staged.Layers.Select(l => l.Name));
        Assert.All(staged.Layers, l => Assert.True(l.ParameterBytes == 4 * l.ParameterCount && l.ParameterCount > 0));
    }

    [Fact]
    public void Each_range_run_alone_reproduces_the_hidden_states_of_transformers()
    {
        var staged = Staged();
        var ids = Fixtures.Expected("input_ids");
        using var embed = staged.CreateStage(0, 1, CPU, ScalarType.Float32);
        using var block0 = staged.CreateStage(1, 1, CPU, ScalarType.Float32);
        using var rest = staged.CreateStage(2, 2, CPU, ScalarType.Float32);

        var h0 = embed.Run(StagedBatch.FromTokens(ids));
        Fixtures.AssertClose(Fixtures.Expected("hidden_0"), h0.Hidden);
        var h1 = block0.Run(h0);
        Fixtures.AssertClose(Fixtures.Expected("hidden_1"), h1.Hidden);
        var logits = rest.Run(h1);
        Fixtures.AssertClose(Fixtures.Expected("lm_logits"), logits.Hidden);
    }

    [Fact]
    public void Stages_share_no_tensor_with_the_model()
    {
        var model = Gpt2Source.Resolve(Fixtures.TinyLanguageModel).CreateLanguageModel(CPU, ScalarType.Float32);
        var staged = new Gpt2StagedModel(model);
        using var whole = staged.CreateStage(0, 4, CPU, ScalarType.Float32);
        using var ids = Fixtures.Expected("input_ids").clone();
        using var before = model.Logits(ids);
        using (no_grad())
        {
            foreach (var p in model.parameters())
            {
                p.zero_();
            }
        }

        Fixtures.AssertClose(before, whole.Run(StagedBatch.FromTokens(ids)).Hidden, 1e-6);
    }

    [Fact]
    public void Classifier_stages_end_in_the_classification_head()
    {
        var staged = new Gpt2StagedModel(Gpt2Source.Resolve(Fixtures.TinyClassifier).CreateClassifier(CPU, ScalarType.Float32));
        using var first = staged.CreateStage(0, 2, CPU, ScalarType.Float32);
        using var second = staged.CreateStage(2, 2, CPU, ScalarType.Float32);
        var output = second.Run(first.Run(StagedBatch.FromTokens(Fixtures.Expected("cls_input_ids"))));
        Fixtures.AssertClose(Fixtures.Expected("cls_logits"), output.Hidden);
    }

    [Fact]
    public void Out_of_range_stages_are_refused() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => Staged().CreateStage(3, 2, CPU, ScalarType.Float32));
}
