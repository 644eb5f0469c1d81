namespace DistributedInference.Actors.Pipeline;

/// <summary>What one pipeline stage computes: built on its stage actor's thread, run there for each micro-batch.</summary>
public interface IStageWork : IDisposable
{
    string Description { get; }

    /// <summary>
    /// Turns a micro-batch's payload into the payload for the next stage (or, on the last stage, result rows).
    /// Ownership: an activation a previous stage made is this call's to dispose once used (as
    /// <see cref="ModelStageWork"/> does); token ids, masks and generation steps' positions stay their sender's (the
    /// coordinator disposes the slices it cut when the call is over); what is returned is handed on, and the
    /// coordinator disposes the last stage's outputs once it has joined them into the call's output, which the caller owns.
    /// </summary>
    object Run(object payload);
}
