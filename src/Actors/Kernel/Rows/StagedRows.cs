using DistributedInference.Models.Staging;

namespace DistributedInference.Actors.Kernel.Rows;

/// <summary>A pipeline's micro-batch between stages: the activation with its token ids and mask; the batch owns all three.</summary>
public sealed class StagedRows : RowBatch
{
    public StagedRows(StagedBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        Batch = batch;
    }

    /// <summary>The activation, ids and mask.</summary>
    public StagedBatch Batch { get; }

    /// <inheritdoc/>
    public override object Value => Batch;

    /// <inheritdoc/>
    public override int Count => Rows.Count(Batch.Hidden);
}
