using DistributedInference.Models.Kernels;
using DistributedInference.Models.Runtime;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tests.Kernels;

public sealed class SkinnyLinearTests
{
    public SkinnyLinearTests() => LibTorch.Initialize();

    private static (Tensor Input, Tensor Weight, Tensor Bias) Random(long seed, long[] inputShape, long outputs)
    {
        var generator = new Generator((ulong)seed);
        return (randn(inputShape, generator: generator), randn([outputs, inputShape[^1]], generator: generator), randn([outputs], generator: generator));
    }

    [Theory]
    [InlineData(1, 896, 4864)]
    [InlineData(2, 64, 8)]
    [InlineData(3, 37, 13)]
    [InlineData(8, 896, 130)]
    [InlineData(15, 100, 7)]
    [InlineData(16, 4864, 896)]
    [InlineData(64, 300, 65)]
    public void Equals_libtorch_linear_for_every_shape_it_takes(int rows, long features, long outputs)
    {
        using var scope = NewDisposeScope();
        var (input, weight, bias) = Random(rows * 1000 + features, [rows, features], outputs);
        Assert.True(SkinnyLinear.Applies(input, weight, bias) == (System.Runtime.Intrinsics.X86.Fma.IsSupported && System.Runtime.Intrinsics.X86.Avx2.IsSupported));
        foreach (var b in new[] { bias, null })
        {
            var expected = nn.functional.linear(input, weight, b);
            var actual = SkinnyLinear.Linear(input, weight, b);
            Assert.Equal(expected.shape, actual.shape);
            var scale = expected.abs().max().item<float>();
            Assert.True((actual - expected).abs().max().item<float>() <= 1e-5 * scale * Math.Sqrt(features), $"rows {rows}, in {features}, out {outputs}");
        }
    }

    [Fact]
    public void A_row_gets_the_same_bits_alone_in_any_batch_and_on_any_number_of_threads()
    {
        using var scope = NewDisposeScope();
        var (input, weight, bias) = Random(7, [2, 5, 4864], 898);
        var batch = SkinnyLinear.Linear(input, weight, bias, threads: 1);
        Assert.Equal(new long[] { 2, 5, 898 }, batch.shape);
        for (var threads = 1; threads <= 3; threads++)
        {
            Assert.True(SkinnyLinear.Linear(input, weight, bias, threads).eq(batch).all().item<bool>());
        }

        var rows = input.reshape(10, 4864);
        var flat = batch.reshape(10, 898);
        for (var i = 0; i < 10; i++)
        {
            using var alone = SkinnyLinear.Linear(rows[i].unsqueeze(0), weight, bias);
            Assert.True(alone[0].eq(flat[i]).all().item<bool>(), $"row {i}");
            using var third = SkinnyLinear.Linear(cat([rows[(i + 1) % 10].unsqueeze(0), rows[(i + 2) % 10].unsqueeze(0), rows[i].unsqueeze(0)], 0), weight, bias);
            Assert.True(third[2].eq(flat[i]).all().item<bool>(), $"row {i} third of three");
        }
    }

    [Fact]
    public void What_it_does_not_take_goes_to_libtorch_unchanged()
    {
        using var scope = NewDisposeScope();
        var (input, weight, bias) = Random(3, [SkinnyLinear.MaxRows + 1, 64], 32);
        Assert.False(SkinnyLinear.Applies(input, weight, bias));
        Assert.True(SkinnyLinear.Linear(input, weight, bias).eq(nn.functional.linear(input, weight, bias)).all().item<bool>());

        var strided = input[..4].t().contiguous().t();
        Assert.False(strided.is_contiguous());
        Assert.False(SkinnyLinear.Applies(strided, weight, bias));
        Assert.False(SkinnyLinear.Applies(input[..4].to(ScalarType.Float64), weight.to(ScalarType.Float64), null));
        Assert.False(SkinnyLinear.Applies(input[..4].to(ScalarType.BFloat16), weight.to(ScalarType.BFloat16), null));
        Assert.False(SkinnyLinear.Applies(input[..4], weight[.., ..32], null));
        Assert.False(SkinnyLinear.Applies(zeros(0, 64), weight, null));

        // An output of 2 GiB or more (64 x 2^23 floats) from a 32 MiB weight: libtorch's, not a span that cannot be made.
        using (var tall = zeros((1L << 23) + 4, 1))
        {
            Assert.False(SkinnyLinear.Applies(zeros(64, 1), tall, null));
            Assert.True(SkinnyLinear.Applies(zeros(2, 1), tall, null) == System.Runtime.Intrinsics.X86.Fma.IsSupported);
        }

        var small = input[..4];
        using (SkinnyLinear.Bypass())
        {
            Assert.False(SkinnyLinear.Applies(small, weight, bias));
            Assert.True(SkinnyLinear.Linear(small, weight, bias).eq(nn.functional.linear(small, weight, bias)).all().item<bool>());
        }

        Assert.True(SkinnyLinear.Applies(small, weight, bias) == System.Runtime.Intrinsics.X86.Fma.IsSupported);

        var learning = weight.clone().requires_grad_(true);
        Assert.False(SkinnyLinear.Applies(input[..4], learning, null));
        using (no_grad())
        {
            Assert.True(SkinnyLinear.Applies(input[..4], learning, null) == System.Runtime.Intrinsics.X86.Fma.IsSupported);
        }
    }
}
