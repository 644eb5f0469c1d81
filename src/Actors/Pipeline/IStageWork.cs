namespace DistributedInference.Actors.Pipeline;

/// <summary>What one pipeline stage computes: built on its stage actor's thread, run there for each micro-batch.</summary>
public interface IStageWork : IDisposable
{
    string Description { get; }

    /// <summary>
    /// Turns a micro-batch's payload (the raw <see cref="Kernel.Rows.RowBatch.Value"/>: a tensor of rows, a dictionary
    /// such as input_ids [B, T] int64 and attention_mask [B, T], a <see cref="Models.Staging.StagedBatch"/>, or a
    /// generation step's dictionary) into the payload for the next stage (or, on the last stage, result rows, one per
    /// input row). It must return one of <see cref="Kernel.Rows.RowBatch"/>'s closed set, or the micro-batch fails.
    /// Ownership, safe for any function: the stage actor owns <paramref name="payload"/>; once this returns it disposes
    /// every tensor of the payload that the returned value does not hold (by reference), and hands the returned value
    /// on (the next stage, or the coordinator, owns it). So a function may return tensors of its input as they are
    /// (they travel on), must not keep any tensor of its input after it returns (clone what it keeps), and frees only
    /// the tensors it made itself and does not return. Disposing an input tensor it does not return is allowed, never
    /// needed.
    /// </summary>
    object Run(object payload);
}
