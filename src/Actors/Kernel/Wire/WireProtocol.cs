namespace DistributedInference.Actors.Kernel.Wire;

/// <summary>
/// A feature's wire format: the messages of the feature that may cross nodes, each with a manifest (a short name unique
/// across protocols), how to write it and how to read it back. One class per feature (<c>ReplicaProtocol</c>,
/// <c>PipelineProtocol</c>, ...), listed once in <c>distributed-inference.wire.protocols</c> (hocon/serialization.conf),
/// like Akka.Cluster.Sharding's <c>ClusterShardingMessageSerializer</c> owns the sharding messages' format. A protocol
/// needs a public parameterless constructor.
/// </summary>
public abstract class WireProtocol
{
    /// <summary>Adds each of the feature's messages to <paramref name="registry"/>.</summary>
    public abstract void Register(WireRegistry registry);
}
