using DistributedInference.Models.Gpt2;
using DistributedInference.Models.Runtime;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tests.Gpt2;

/// <summary>A row's result depends only on its own real tokens, whatever else shares its batch.</summary>
public sealed class Gpt2PaddingTests
{
    public Gpt2PaddingTests() => LibTorch.Initialize();

    [Fact]
    public void Classifier_pools_at_the_same_token_with_or_without_a_mask()
    {
        // The fixture's pad id is 0: a row ending in token 0 pools at its last non-pad token, as transformers does,
        // whether or not a longer row made the caller build an attention mask.
        using var model = Gpt2Source.Resolve(Fixtures.TinyClassifier).CreateClassifier(CPU, ScalarType.Float32);
        Assert.Equal(0, model.Config.PadTokenId);
        using var alone = model.Classify(tensor(new long[] { 17, 42, 0, 17, 42, 0 }, [2, 3]));
        using var ids = tensor(new long[] { 17, 42, 0, 0, 0, 9, 8, 7, 6, 5 }, [2, 5]);
        using var mask = tensor(new long[] { 1, 1, 1, 0, 0, 1, 1, 1, 1, 1 }, [2, 5]);
        using var withLonger = model.Classify(ids, mask);
        using var reference = model.Classify(tensor(new long[] { 17, 42 }, [1, 2]));

        Fixtures.AssertClose(alone[0], withLonger[0], 1e-5);
        Fixtures.AssertClose(reference[0], withLonger[0], 1e-5);
    }
}
