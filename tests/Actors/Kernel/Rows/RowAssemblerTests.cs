using DistributedInference.Actors.Kernel.Rows;
using DistributedInference.Models.Runtime;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Tests.Kernel.Rows;

public sealed class RowAssemblerTests
{
    public RowAssemblerTests() => LibTorch.Initialize();

    private static Tensor Rows(int start, int count) => arange(start, start + count, ScalarType.Float32).view(count, 1);

    [Fact]
    public void Parts_in_any_order_join_in_input_order()
    {
        using var assembler = new RowAssembler(6);
        Assert.Equal(2, assembler.Add(4, Rows(4, 2)));
        Assert.Equal(3, assembler.Add(1, Rows(1, 3)));
        Assert.False(assembler.Complete);
        Assert.Equal([(0, 1)], assembler.Missing());
        assembler.Add(0, Rows(0, 1));
        using var joined = assembler.Join()!;
        Assert.Equal([0f, 1, 2, 3, 4, 5], ((Tensor)joined).flatten().data<float>().ToArray());
    }

    [Fact]
    public void A_row_already_here_is_not_taken_again_and_the_duplicate_is_released()
    {
        using var assembler = new RowAssembler(4);
        assembler.Add(0, Rows(0, 2));
        var overlap = full(2, 1, 9f);
        Assert.Equal(1, assembler.Add(1, overlap));
        Assert.True(overlap.IsInvalid);
        Assert.Equal([(3, 1)], assembler.Missing());
        assembler.Add(3, Rows(3, 1));
        using var joined = assembler.Join()!;
        Assert.Equal([0f, 1, 9, 3], ((Tensor)joined).flatten().data<float>().ToArray());
    }

    [Fact]
    public void Failed_rows_are_blanks_in_the_join_zeros_or_nulls()
    {
        using var tensors = new RowAssembler(3, copyTensors: true);
        tensors.Add(0, Rows(1, 1));
        Assert.True(tensors.Fail(1, "bad row"));
        Assert.False(tensors.Fail(0, "answered already"));
        tensors.Add(2, Rows(5, 1));
        using var joined = tensors.Join()!;
        Assert.Equal([1f, 0, 5], ((Tensor)joined).flatten().data<float>().ToArray());
        Assert.Equal([(1, "bad row")], tensors.Failures);

        using var lists = new RowAssembler(2);
        lists.Fail(0, "bad");
        lists.Add(1, new object?[] { "b" });
        Assert.Equal([null, "b"], (object?[])lists.Join()!);
    }

    [Fact]
    public void Copied_tensors_are_released_at_once_and_a_part_of_another_shape_is_refused()
    {
        using var assembler = new RowAssembler(3, copyTensors: true);
        var part = Rows(0, 2);
        assembler.Add(0, part);
        Assert.True(part.IsInvalid);
        Assert.Throws<ArgumentException>(() => assembler.Add(2, zeros(1, 2)));
    }

    [Fact]
    public void Dictionaries_join_key_by_key()
    {
        using var assembler = new RowAssembler(3);
        assembler.Add(2, RowBatch.From(new Dictionary<string, object> { ["x"] = Rows(2, 1) }));
        assembler.Add(0, RowBatch.From(new Dictionary<string, object> { ["x"] = Rows(0, 2) }));
        var joined = Assert.IsType<DictionaryRows>(assembler.Join());
        Assert.Equal([0f, 1, 2], ((Tensor)joined.Columns["x"]).flatten().data<float>().ToArray());
        joined.Dispose();
    }

    [Fact]
    public void Nothing_answered_joins_to_null_and_rows_out_of_range_are_refused()
    {
        using var assembler = new RowAssembler(2);
        Assert.Null(assembler.Join());
        Assert.Throws<ArgumentOutOfRangeException>(() => assembler.Add(1, Rows(0, 2)));
    }
}
