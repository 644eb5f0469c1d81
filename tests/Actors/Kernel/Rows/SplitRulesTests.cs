using CsCheck;
using DistributedInference.Actors.Kernel.Rows;
using DistributedInference.Models;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Tests.Kernel.Rows;

public sealed class SplitRulesTests
{
    [Fact]
    public void Splits_extras_to_lowest_ranks() =>
        Assert.Equal([3, 3, 2, 2], Share.Plan(10, 4, applyPadding: false).Select(s => s.Count));

    [Fact]
    public void Every_item_lands_exactly_once_in_order_and_shares_differ_by_at_most_one() =>
        Gen.Select(Gen.Int[0, 200], Gen.Int[1, 16]).Sample((length, ranks) =>
        {
            var items = Enumerable.Range(0, length).ToList();
            var parts = SplitRules.SplitList(items, ranks, applyPadding: false);
            Assert.Equal(items, parts.SelectMany(p => p));
            Assert.True(parts.Max(p => p.Count) - parts.Min(p => p.Count) <= 1);
            Assert.True(parts.Zip(parts.Skip(1)).All(pair => pair.First.Count >= pair.Second.Count));
        });

    [Fact]
    public void Padding_only_fills_up_to_the_largest_share_with_the_last_item() =>
        Gen.Select(Gen.Int[1, 200], Gen.Int[1, 16]).Sample((length, ranks) =>
        {
            var items = Enumerable.Range(0, length).ToList();
            var plain = SplitRules.SplitList(items, ranks, applyPadding: false);
            var padded = SplitRules.SplitList(items, ranks, applyPadding: true);
            var largest = plain.Max(p => p.Count);
            for (var rank = 0; rank < ranks; rank++)
            {
                Assert.Equal(largest, padded[rank].Count);
                Assert.Equal(plain[rank], padded[rank].Take(plain[rank].Count));
                Assert.All(padded[rank].Skip(plain[rank].Count), pad => Assert.Equal(length - 1, pad));
            }
        });

    [Fact]
    public void Gather_restores_input_order_and_drops_padding_for_any_number_of_ranks() =>
        Gen.Select(Gen.Int[0, 200], Gen.Int[1, 16], Gen.Bool).Sample((length, ranks, pad) =>
        {
            var items = Enumerable.Range(0, length).ToList();
            var perRank = SplitRules.SplitList(items, ranks, pad);
            var results = perRank.Select(p => (IReadOnlyList<string>)p.Select(i => $"r{i}").ToList()).ToList();
            Assert.Equal(items.Select(i => $"r{i}"), SplitRules.GatherList(results, length, pad));
            var gathered = (object[])SplitRules.Gather(results.Select(r => (object)r.ToArray()).ToList(), length, pad);
            Assert.Equal(items.Select(i => $"r{i}"), gathered.Cast<string>());
        });

    [Fact]
    public void Accelerates_gather_then_drop_the_tail_is_wrong_for_three_ranks_ours_is_not()
    {
        // 5 items on 4 ranks with padding: [0,1 | 2,4 | 3,4 | 4,4]. Accelerate's recipe (gather, keep the first 5)
        // gives 0,1,2,4,3: a pad in the middle and item 3 out of place. Ours keeps input order.
        var items = Enumerable.Range(0, 5).ToList();
        var perRank = SplitRules.SplitList(items, 4, applyPadding: true);
        var naive = perRank.SelectMany(p => p).Take(items.Count).ToList();
        Assert.NotEqual(items, naive);
        Assert.Equal(items, SplitRules.GatherList(perRank, items.Count, applyPadding: true));
    }

    [Fact]
    public void Tensors_split_along_the_first_dimension_and_pad_with_the_last_row()
    {
        using var input = arange(10, ScalarType.Int64).view(5, 2);
        var parts = SplitRules.SplitAll(input, 3, applyPadding: true).Cast<Tensor>().ToList();
        Assert.Equal([[0L, 1, 2, 3], [4L, 5, 6, 7], [8L, 9, 8, 9]], parts.Select(p => p.data<long>().ToArray()));
        using var gathered = (Tensor)SplitRules.Gather((IReadOnlyList<object>)parts, 5, applyPadding: true);
        Assert.True(gathered.equal(input).all().ToBoolean());
    }

    [Fact]
    public void Dictionary_values_split_consistently_by_their_rows_not_their_keys()
    {
        var input = new Dictionary<string, object>
        {
            ["input_ids"] = arange(6, ScalarType.Int64).view(3, 2),
            ["meta"] = new Dictionary<string, object> { ["names"] = new[] { "a", "b", "c" } },
        };
        var parts = SplitRules.SplitAll(input, 2, applyPadding: true).Cast<IReadOnlyDictionary<string, object>>().ToList();
        Assert.Equal([0L, 1, 2, 3], ((Tensor)parts[0]["input_ids"]).data<long>().ToArray());
        Assert.Equal([4L, 5, 4, 5], ((Tensor)parts[1]["input_ids"]).data<long>().ToArray());
        Assert.Equal(["c", "c"], ((IReadOnlyDictionary<string, object>)parts[1]["meta"])["names"] as IEnumerable<object>);

        var gathered = (IReadOnlyDictionary<string, object>)SplitRules.Gather(parts.Cast<object>().ToList(), 3, applyPadding: true);
        Assert.Equal(["a", "b", "c"], ((IReadOnlyDictionary<string, object>)gathered["meta"])["names"] as IEnumerable<object>);
    }

    [Fact]
    public void Dictionary_values_of_different_lengths_are_an_error()
    {
        var input = new Dictionary<string, object> { ["a"] = new[] { 1, 2, 3 }, ["b"] = new[] { 1, 2 } };
        var error = Assert.Throws<InvalidInputException>(() => SplitRules.SplitAll(input, 2, applyPadding: false));
        Assert.Contains("a: 3, b: 2", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Tuples_split_and_pad()
    {
        var parts = SplitRules.SplitAll(("a dog", "a cat", "a chicken"), 2, applyPadding: true);
        Assert.Equal(["a chicken", "a chicken"], parts[1] as IEnumerable<object>);
    }

    [Fact]
    public void Empty_input_with_padding_is_no_error() =>
        Assert.All(SplitRules.SplitAll(Array.Empty<string>(), 3, applyPadding: true), part => Assert.Empty((object[])part));

    [Theory]
    [InlineData("a dog")]
    [InlineData(42)]
    [InlineData(null)]
    public void Types_that_cannot_be_split_are_a_clear_error(object? input)
    {
        var error = Assert.Throws<InvalidInputException>(() => SplitRules.SplitAll(input!, 2, applyPadding: false));
        Assert.StartsWith("cannot split", error.Message, StringComparison.Ordinal);
    }
}
