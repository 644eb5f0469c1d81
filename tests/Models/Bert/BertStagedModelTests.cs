using DistributedInference.Models.Bert;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Staging;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tests.Bert;

public sealed class BertStagedModelTests
{
    public BertStagedModelTests() => LibTorch.Initialize();

    [Fact]
    public void Names_layers_in_order_with_sizes_and_flops()
    {
        using var staged = BertStagedModel.Load(BertSource.Resolve(MiniLmFixture.Folder));
        Assert.Equal(["embeddings", "encoder.layer.0", "encoder.layer.1", "pooler"], staged.Layers.Select(l => l.Name));
        // word 348x64 + positions 64x64 + types 2x64 + LayerNorm 2x64.
        Assert.Equal((348 + 64 + 2 + 2) * 64, staged.Layers[0].ParameterCount);
        // q, k, v, attention output 64x64 + intermediate 128x64 + output 64x128, their biases, two LayerNorms.
        var layer = (4 * 64 * 64) + (2 * 128 * 64) + (4 * 64) + 128 + 64 + (4 * 64);
        Assert.Equal(layer, staged.Layers[1].ParameterCount);
        Assert.Equal(4L * layer, staged.Layers[1].ParameterBytes);
        Assert.Equal(2L * ((4 * 64 * 64) + (2 * 128 * 64)), staged.Layers[1].FlopsPerToken);
        Assert.Equal(0, staged.Layers[3].ParameterCount);
    }

    [Fact]
    public void Each_stage_reproduces_its_hidden_state_and_the_last_the_embeddings()
    {
        using var staged = BertStagedModel.Load(BertSource.Resolve(MiniLmFixture.Folder));
        using var embeddings = staged.CreateStage(0, 1, CPU, ScalarType.Float32);
        using var layer0 = staged.CreateStage(1, 1, CPU, ScalarType.Float32);
        using var layer1 = staged.CreateStage(2, 1, CPU, ScalarType.Float32);
        using var pooler = staged.CreateStage(3, 1, CPU, ScalarType.Float32);

        var batch = StagedBatch.FromTokens(MiniLmFixture.Expected("input_ids"), MiniLmFixture.Expected("attention_mask"));
        var h0 = embeddings.Run(batch);
        Fixtures.AssertClose(MiniLmFixture.Expected("hidden_0"), h0.Hidden);
        var h1 = layer0.Run(h0);
        Fixtures.AssertClose(MiniLmFixture.Expected("hidden_1"), h1.Hidden);
        var h2 = layer1.Run(h1);
        Fixtures.AssertClose(MiniLmFixture.Expected("hidden_2"), h2.Hidden);
        var pooled = pooler.Run(h2);
        Fixtures.AssertClose(MiniLmFixture.Expected("embeddings"), pooled.Hidden);
    }

    [Fact]
    public void A_whole_stage_in_bfloat16_stays_close()
    {
        using var staged = BertStagedModel.Load(BertSource.Resolve(MiniLmFixture.Folder));
        using var whole = staged.CreateStage(0, 4, CPU, ScalarType.BFloat16);
        var output = whole.Run(StagedBatch.FromTokens(MiniLmFixture.Expected("input_ids"), MiniLmFixture.Expected("attention_mask")));
        Assert.Equal([6L, 64L], output.Hidden.shape);
        Fixtures.AssertClose(MiniLmFixture.Expected("embeddings"), output.Hidden, 0.05);
    }
}
