using DistributedInference.Actors.Kernel.Rows;
using DistributedInference.Models;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Staging;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Tests.Kernel.Rows;

public sealed class RowBatchTests
{
    public RowBatchTests() => LibTorch.Initialize();

    [Fact]
    public void Holds_one_of_a_closed_set_and_refuses_anything_else_naming_its_type()
    {
        using var rows = zeros(3, 2);
        Assert.Same(rows, Assert.IsType<TensorRows>(RowBatch.From(rows)).Tensor);
        Assert.True(Assert.IsType<ListRows>(RowBatch.From(new[] { "a dog", "a cat" })).IsPrompts);
        Assert.False(Assert.IsType<ListRows>(RowBatch.From(new object?[] { 1, "b", null, new[] { 2L } })).IsPrompts);
        Assert.Same(rows, Assert.IsType<DictionaryRows>(RowBatch.From(new Dictionary<string, object> { ["input_ids"] = rows })).Columns["input_ids"]);
        Assert.IsType<StagedRows>(RowBatch.From(StagedBatch.FromTokens(rows)));
        Assert.Equal([1, 2], Assert.IsType<ListRows>(RowBatch.From((1, 2))).Items);

        Assert.Contains("Uri", Assert.Throws<ArgumentException>(() => RowBatch.From(new Uri("http://127.0.0.1"))).Message, StringComparison.Ordinal);
        Assert.Contains("Version", Assert.Throws<ArgumentException>(() => RowBatch.From(new object[] { new Version(1, 0) })).Message, StringComparison.Ordinal);
        Assert.Contains("DateTime", Assert.Throws<ArgumentException>(() => RowBatch.From(new Dictionary<string, object> { ["when"] = DateTime.UnixEpoch })).Message, StringComparison.Ordinal);
        Assert.StartsWith("cannot split a string", Assert.Throws<ArgumentException>(() => RowBatch.From("a dog")).Message, StringComparison.Ordinal);
        Assert.StartsWith("cannot split a string", Assert.Throws<InvalidInputException>(() => RowBatch.FromInput("a dog")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Dispose_releases_every_handle_once_a_staged_batch_included()
    {
        var ids = arange(6, ScalarType.Int64).view(2, 3);
        var mask = ones(2, 3, ScalarType.Int64);
        var first = RowBatch.From(StagedBatch.FromTokens(ids, mask));
        Assert.Equal(2, first.Count);
        first.Dispose();
        Assert.True(ids.IsInvalid && mask.IsInvalid);
        first.Dispose();

        var hidden = randn(2, 3, 4);
        var list = RowBatch.From(new object?[] { hidden, "text", new Dictionary<string, object> { ["x"] = hidden } });
        list.Dispose();
        Assert.True(hidden.IsInvalid);
    }

    [Fact]
    public void Handles_and_cuts_can_be_disposed_while_the_rows_they_came_from_stay_valid()
    {
        using var ids = arange(12, ScalarType.Int64).view(4, 3);
        var payload = RowBatch.From(new Dictionary<string, object> { ["input_ids"] = ids });
        using (var handles = payload.Handles())
        {
            Assert.NotSame(ids, ((IReadOnlyDictionary<string, object>)handles.Value)["input_ids"]);
        }

        using (var cut = payload.Cut(2, 2, padding: 1))
        {
            Assert.Equal(3, cut.Count);
            Assert.Equal([6L, 7, 8, 9, 10, 11, 9, 10, 11], ((Tensor)((IReadOnlyDictionary<string, object>)cut.Value)["input_ids"]).data<long>().ToArray());
        }

        var staged = RowBatch.From(StagedBatch.FromTokens(ids));
        using (var copy = staged.Handles())
        {
            var batch = copy.As<StagedBatch>();
            Assert.Same(batch.Hidden, batch.InputIds);
            Assert.NotSame(ids, batch.InputIds);
        }

        Assert.False(ids.IsInvalid);
        Assert.Equal(66L, ids.sum().item<long>());
    }

    [Fact]
    public void A_clone_owns_its_own_storage()
    {
        using var rows = ones(2, 2);
        using var clone = RowBatch.From(rows).Clone();
        rows.mul_(3);
        Assert.Equal([1f, 1, 1, 1], ((Tensor)clone).data<float>().ToArray());
    }
}
