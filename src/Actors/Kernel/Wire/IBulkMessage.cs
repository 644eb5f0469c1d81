namespace DistributedInference.Actors.Kernel.Wire;

/// <summary>
/// A wire message that may take the data plane (<see cref="Transport.Transport"/>) between nodes that have one: it
/// carries user rows (a batch, results, a micro-batch), or it must keep its order with messages that do (a batch that
/// failed, rows that failed, a job accepted). A frame of any other message is refused before its body is read, and
/// every other message travels over Akka.
/// </summary>
public interface IBulkMessage : IWireMessage
{
}
