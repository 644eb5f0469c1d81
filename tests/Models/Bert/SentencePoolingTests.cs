using DistributedInference.Models.Bert;
using DistributedInference.Models.Runtime;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tests.Bert;

public sealed class SentencePoolingTests
{
    public SentencePoolingTests() => LibTorch.Initialize();

    // Two rows of three tokens, width 2; row 1's last token is padding.
    private static Tensor Tokens() => tensor(new float[] { 1, 2, 3, 4, 5, 6, /* row 1 */ -1, 7, 2, -8, 100, 100 }, [2, 3, 2]);

    private static Tensor Mask() => tensor(new long[] { 1, 1, 1, 1, 1, 0 }, [2, 3]);

    [Fact]
    public void Cls_pooling_takes_the_first_token()
    {
        using var pooled = SentencePooling.Cls.Pool(Tokens(), Mask());
        Assert.Equal(new float[] { 1, 2, -1, 7 }, pooled.data<float>().ToArray());
    }

    [Fact]
    public void Max_pooling_ignores_padding()
    {
        using var pooled = new SentencePooling { MaxTokens = true }.Pool(Tokens(), Mask());
        Assert.Equal(new float[] { 5, 6, 2, 7 }, pooled.data<float>().ToArray());
    }

    [Fact]
    public void Mean_pooling_averages_real_tokens()
    {
        using var pooled = SentencePooling.Mean.Pool(Tokens(), Mask());
        Assert.Equal(new float[] { 3, 4, 0.5f, -0.5f }, pooled.data<float>().ToArray());
    }

    [Fact]
    public void Last_token_pooling_takes_the_last_real_token_on_either_side()
    {
        var last = new SentencePooling { LastToken = true };
        using var pooled = last.Pool(Tokens(), Mask());
        Assert.Equal(new float[] { 5, 6, 2, -8 }, pooled.data<float>().ToArray());

        using var leftPadded = tensor(new long[] { 1, 1, 1, 0, 1, 1 }, [2, 3]);
        using var left = last.Pool(Tokens(), leftPadded);
        Assert.Equal(new float[] { 5, 6, 100, 100 }, left.data<float>().ToArray());
    }

    [Fact]
    public void Several_modes_concatenate_in_sentence_transformers_order()
    {
        using var pooled = new SentencePooling { MeanTokens = true, ClsToken = true }.Pool(Tokens(), Mask());
        Assert.Equal(new float[] { 1, 2, 3, 4, -1, 7, 0.5f, -0.5f }, pooled.data<float>().ToArray());
    }
}
