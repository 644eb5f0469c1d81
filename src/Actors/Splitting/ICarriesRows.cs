namespace DistributedInference.Actors.Splitting;

/// <summary>
/// A message that carries rows. Its <see cref="Payload"/> follows <see cref="RowPayload"/>'s rule: the receiver owns it.
/// This is all a transport needs to know: the data plane disposes the payload of whatever it has written (the
/// receiver gets its own copy), whatever the message's type.
/// </summary>
public interface ICarriesRows
{
    /// <summary>The rows, or null when the message has none (a non-streamed <c>RowsCompleted</c>, an empty job's results).</summary>
    RowPayload? Payload { get; }
}
