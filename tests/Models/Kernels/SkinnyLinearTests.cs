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
        foreach (var narrow in new[] { false, true })
        {
            using var width = narrow ? SkinnyLinear.Narrow() : null;
            foreach (var b in new[] { bias, null })
            {
                var expected = nn.functional.linear(input, weight, b);
                var actual = SkinnyLinear.Linear(input, weight, b);
                Assert.Equal(expected.shape, actual.shape);
                var scale = expected.abs().max().item<float>();
                Assert.True((actual - expected).abs().max().item<float>() <= 1e-5 * scale * Math.Sqrt(features), $"rows {rows}, in {features}, out {outputs}, {SkinnyLinear.Lanes} lanes");
            }
        }
    }

    [Fact]
    public void Runs_sixteen_lanes_where_the_cpu_has_avx512_and_eight_when_told()
    {
        var avx2 = System.Runtime.Intrinsics.X86.Fma.IsSupported && System.Runtime.Intrinsics.X86.Avx2.IsSupported;
        var avx512 = System.Runtime.Intrinsics.X86.Avx512F.IsSupported && System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated;
        Assert.Equal(!avx2 ? 0 : avx512 ? 16 : 8, SkinnyLinear.Lanes);
        using (SkinnyLinear.Narrow())
        {
            Assert.Equal(avx2 ? 8 : 0, SkinnyLinear.Lanes);
            var other = -1;
            var thread = new Thread(() => other = SkinnyLinear.Lanes);
            thread.Start();
            thread.Join();
            Assert.Equal(!avx2 ? 0 : avx512 ? 16 : 8, other);
        }

        Assert.Equal(!avx2 ? 0 : avx512 ? 16 : 8, SkinnyLinear.Lanes);
    }

    [Fact]
    public void A_row_gets_the_same_bits_alone_in_any_batch_and_on_any_number_of_threads()
    {
        foreach (var narrow in new[] { false, true })
        {
            using var width = narrow ? SkinnyLinear.Narrow() : null;
            using var scope = NewDisposeScope();
            var (input, weight, bias) = Random(7, [2, 5, 4864], 898);
            var batch = SkinnyLinear.Linear(input, weight, bias, threads: 1);
            Assert.Equal(new long[] { 2, 5, 898 }, batch.shape);
            for (var threads = 1; threads <= 3; threads++)
            {
                Assert.True(SkinnyLinear.Linear(input, weight, bias, threads).eq(batch).all().item<bool>(), $"{threads} threads, {SkinnyLinear.Lanes} lanes");
            }

            // Every way a row can meet a block of weight rows: alone, second of two, third of three (after a pair), fourth
            // and eighth of a 4 + 4, and the last of 7 (4 + 2 + 1).
            var rows = input.reshape(10, 4864);
            var flat = batch.reshape(10, 898);
            for (var i = 0; i < 10; i++)
            {
                foreach (var size in new[] { 1, 2, 3, 4, 7, 8 })
                {
                    var others = Enumerable.Range(1, size - 1).Select(j => rows[(i + j) % 10].unsqueeze(0)).Append(rows[i].unsqueeze(0)).ToArray();
                    using var together = SkinnyLinear.Linear(cat(others, 0), weight, bias);
                    Assert.True(together[size - 1].eq(flat[i]).all().item<bool>(), $"row {i} last of {size}, {SkinnyLinear.Lanes} lanes");
                }
            }
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
