using static TorchSharp.torch;

namespace DistributedInference.Actors.Kernel.Rows;

/// <summary>Rows of one tensor, along dim 0 (any dtype, any device); the batch owns <see cref="Tensor"/>.</summary>
public sealed class TensorRows : RowBatch
{
    /// <param name="tensor">The rows; at least one dimension.</param>
    public TensorRows(Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        Tensor = tensor;
    }

    /// <summary>The tensor of rows.</summary>
    public Tensor Tensor { get; }

    /// <inheritdoc/>
    public override object Value => Tensor;

    /// <inheritdoc/>
    /// <exception cref="Models.InvalidInputException">A 0-dimensional tensor has no rows.</exception>
    public override int Count => Rows.Count(Tensor);
}
