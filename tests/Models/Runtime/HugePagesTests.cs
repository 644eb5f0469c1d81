using DistributedInference.Models.Runtime;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tests.Runtime;

/// <summary>Moving weights to huge pages keeps every value, and touches only whole 2 MiB pages of large contiguous (or transposed contiguous) CPU tensors.</summary>
public sealed class HugePagesTests
{
    public HugePagesTests() => LibTorch.Initialize();

    [Fact]
    public void Collapsing_keeps_every_value_and_counts_only_whole_huge_pages_of_large_tensors()
    {
        using var scope = NewDisposeScope();
        var large = randn(3_000_000);
        var expected = large.clone();
        var small = randn(1000);
        var strided = randn(2000, 4000).slice(1, 0, 4000, 2);

        var collapsed = HugePages.Collapse([large, small, strided]);

        Assert.True(large.eq(expected).all().item<bool>());
        Assert.Equal(0, collapsed % (1L << 21));
        Assert.InRange(collapsed, 0, large.NumberOfElements * sizeof(float));
        Assert.Equal(0, HugePages.Collapse([small, strided]));
    }

    [Fact]
    public void A_transposed_matrix_is_one_dense_block_and_is_collapsed_as_one()
    {
        using var scope = NewDisposeScope();
        var rows = randn(2000, 2000);
        var transposed = rows.t();
        var expected = transposed.clone();

        Assert.Equal(HugePages.DenseStart(rows), HugePages.DenseStart(transposed));
        Assert.NotNull(HugePages.DenseStart(transposed));
        Assert.Null(HugePages.DenseStart(randn(2000, 4000).slice(1, 0, 4000, 2)));
        Assert.Null(HugePages.DenseStart(randn(20, 30, 40).permute(2, 0, 1)));

        var collapsed = HugePages.Collapse([transposed]);

        Assert.True(transposed.eq(expected).all().item<bool>());
        Assert.Equal(0, collapsed % (1L << 21));
        Assert.InRange(collapsed, 0, rows.NumberOfElements * sizeof(float));
    }
}
