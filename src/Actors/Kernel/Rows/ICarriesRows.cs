namespace DistributedInference.Actors.Kernel.Rows;

/// <summary>
/// A message that carries rows. Its <see cref="Payload"/> follows <see cref="RowBatch"/>'s rule: the receiver owns it.
/// This is all a transport needs to know: the data plane and remote Akka call <see cref="ReleaseRows"/> on whatever they
/// have written (the receiver gets its own copy), whatever the message's type.
/// </summary>
public interface ICarriesRows
{
    /// <summary>
    /// The rows, or null when the message has none (a non-streamed <c>RowsCompleted</c>, an empty job's results) or holds
    /// several (<c>GatheredOutputs</c>: see <see cref="ReleaseRows"/>).
    /// </summary>
    RowBatch? Payload { get; }

    /// <summary>Disposes every row the message carries: <see cref="Payload"/>, or more for a message that holds several.</summary>
    void ReleaseRows() => Payload?.Dispose();
}
