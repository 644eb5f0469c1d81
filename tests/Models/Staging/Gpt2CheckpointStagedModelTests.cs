using DistributedInference.Models.Gpt2;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Staging;
using DistributedInference.Models.Tasks;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tests.Staging;

/// <summary>GPT-2's staged view of a checkpoint folder: stages read only their own tensors, and compute what the whole-model view computes.</summary>
public sealed class Gpt2CheckpointStagedModelTests
{
    public Gpt2CheckpointStagedModelTests() => LibTorch.Initialize();

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Layers_are_sized_from_the_config_as_the_whole_model_view_counts_them(bool classifier)
    {
        var source = Gpt2Source.Resolve(classifier ? Fixtures.TinyClassifier : Fixtures.TinyLanguageModel);
        using var whole = Gpt2StagedModel.Load(source, classifier ? InferenceTask.Classify : InferenceTask.Logits);
        var lazy = new Gpt2CheckpointStagedModel(source, classifier ? InferenceTask.Classify : InferenceTask.Logits);
        Assert.Equal(whole.Layers, lazy.Layers);
    }

    [Fact]
    public void Stages_built_alone_reproduce_the_hidden_states_and_logits_of_transformers()
    {
        var staged = new Gpt2CheckpointStagedModel(Gpt2Source.Resolve(Fixtures.TinyLanguageModel), InferenceTask.Logits);
        using var embed = staged.CreateStage(0, 1, CPU, ScalarType.Float32);
        using var block0 = staged.CreateStage(1, 1, CPU, ScalarType.Float32);
        using var rest = staged.CreateStage(2, 2, CPU, ScalarType.Float32);
        var h0 = embed.Run(StagedBatch.FromTokens(Fixtures.Expected("input_ids")));
        Fixtures.AssertClose(Fixtures.Expected("hidden_0"), h0.Hidden);
        var h1 = block0.Run(h0);
        Fixtures.AssertClose(Fixtures.Expected("hidden_1"), h1.Hidden);
        Fixtures.AssertClose(Fixtures.Expected("lm_logits"), rest.Run(h1).Hidden);
    }

    [Fact]
    public void Classifier_stages_give_the_classification_logits_in_bf16_too()
    {
        var staged = new Gpt2CheckpointStagedModel(Gpt2Source.Resolve(Fixtures.TinyClassifier), InferenceTask.Classify);
        using var front = staged.CreateStage(0, 2, CPU, ScalarType.Float32);
        using var back = staged.CreateStage(2, 2, CPU, ScalarType.Float32);
        var ids = Fixtures.Expected("cls_input_ids");
        Fixtures.AssertClose(Fixtures.Expected("cls_logits"), back.Run(front.Run(StagedBatch.FromTokens(ids))).Hidden);

        using var bf16 = staged.CreateStage(0, 4, CPU, ScalarType.BFloat16);
        Assert.All(bf16.parameters(), p => Assert.Equal(ScalarType.BFloat16, p.dtype));
        Fixtures.AssertClose(Fixtures.Expected("cls_logits"), bf16.Run(StagedBatch.FromTokens(ids)).Hidden.to(ScalarType.Float32), 0.05);
    }
}
