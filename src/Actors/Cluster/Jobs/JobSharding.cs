using Akka.Actor;
using Akka.Cluster.Sharding;
using DistributedInference.Actors.Cluster.Devices;
using DistributedInference.Actors.Replica;

namespace DistributedInference.Actors.Cluster.Jobs;

/// <summary>
/// The job shard region: <see cref="JobCoordinator"/> entities keyed by job id, hosted by nodes with the
/// <see cref="ControlRole"/> role (shard state in distributed data, see hocon/cluster.conf); every other node reaches
/// them through a proxy. Send it <see cref="SubmitJob"/>, <see cref="CancelJob"/> or <see cref="GetJobStatus"/>.
/// A coordinator lives as long as its job: the region's automatic passivation of idle entities
/// (<c>akka.cluster.sharding.passivate-idle-entity-after</c>) is off, since a job's traffic reaches its coordinator
/// directly, not through the region, and a busy coordinator would look idle; a coordinator passivates itself once its
/// job has ended and its outcome was kept for <c>keep-finished-jobs-for</c>.
/// </summary>
public static class JobSharding
{
    public const string TypeName = "jobs";
    public const string ControlRole = "control";
    public const string RegistryName = "device-registry";
    private const int MaxShards = 64;

    /// <summary>
    /// On a control node: a device registry (named <see cref="RegistryName"/>) following every device of the cluster,
    /// the region hosting job coordinators that run their jobs on those devices, and a splitter (named
    /// <see cref="ReplicaSplitter.ActorName"/>, as everywhere) fed by the same registry, for jobs sent to it directly.
    /// </summary>
    public static IActorRef StartRegion(ActorSystem system, TimeSpan keepFinishedFor)
    {
        var splitter = system.ActorOf(ReplicaSplitter.Props([]), ReplicaSplitter.ActorName);
        var registry = system.ActorOf(DeviceRegistry.Props(splitter), RegistryName);
        return ClusterSharding.Get(system).Start(
            TypeName,
            jobId => JobCoordinator.Props(jobId, registry, keepFinishedFor),
            ClusterShardingSettings.Create(system).WithRole(ControlRole).WithPassivateIdleAfter(TimeSpan.Zero),
            new JobMessageExtractor());
    }

    /// <summary>On any other node: a proxy that routes job messages to their coordinators on the control nodes.</summary>
    public static IActorRef StartProxy(ActorSystem system) =>
        ClusterSharding.Get(system).StartProxy(TypeName, ControlRole, new JobMessageExtractor());

    private sealed class JobMessageExtractor() : HashCodeMessageExtractor(MaxShards)
    {
        public override string? EntityId(object message) => message switch
        {
            SubmitJob submit => submit.JobId,
            CancelJob cancel => cancel.JobId,
            GetJobStatus status => status.JobId,
            _ => null,
        };
    }
}
