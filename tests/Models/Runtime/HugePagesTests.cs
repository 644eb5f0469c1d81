using DistributedInference.Models.Runtime;
using static TorchSharp.torch;

namespace DistributedInference.Models.Tests.Runtime;

/// <summary>Moving weights to huge pages keeps every value, and touches only whole 2 MiB pages of large contiguous CPU tensors.</summary>
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
        var strided = randn(2000, 2000).t();

        var collapsed = HugePages.Collapse([large, small, strided]);

        Assert.True(large.eq(expected).all().item<bool>());
        Assert.Equal(0, collapsed % (1L << 21));
        Assert.InRange(collapsed, 0, large.NumberOfElements * sizeof(float));
        Assert.Equal(0, HugePages.Collapse([small, strided]));
    }
}
