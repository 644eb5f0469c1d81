using Akka.Actor;
using Akka.Cluster;
using DistributedInference.Actors.Kernel.Membership;
using DistributedInference.Actors.Kernel.Wire;

namespace DistributedInference.Actors.Kernel.Transport;

/// <summary>Asks a node's <see cref="DataPlaneDirectory"/> where its data plane listens: answered with <see cref="DataPlaneEndpoint"/>.</summary>
public sealed record GetDataPlaneEndpoint : IWireMessage
{
    public static readonly GetDataPlaneEndpoint Instance = new();
}

/// <summary>Where a node's data plane listens (host:port).</summary>
public sealed record DataPlaneEndpoint(string Endpoint) : IWireMessage;

/// <summary>
/// The data plane's actor on every node that has one (<c>/system/data-plane</c>): answers members that ask where this
/// node's data plane listens (the asker then proves, in the handshake, that it reached this node), and closes the
/// connection to a node that left the cluster.
/// </summary>
internal sealed class DataPlaneDirectory : MembersOnlyActor
{
    public const string ActorName = "data-plane";

    private readonly TensorDataPlane _plane;

    public DataPlaneDirectory(TensorDataPlane plane)
    {
        _plane = plane;
        Receive<GetDataPlaneEndpoint>(_ => Sender.Tell(new DataPlaneEndpoint(_plane.Endpoint)));
        Receive<ClusterEvent.MemberRemoved>(removed => _plane.PeerGone(removed.Member.Address));
        Receive<ClusterEvent.IMemberEvent>(_ => { });
    }

    public static Props Props(TensorDataPlane plane) => Akka.Actor.Props.Create(() => new DataPlaneDirectory(plane));

    protected override void PreStart()
    {
        if (Context.System is ExtendedActorSystem { Provider: IClusterActorRefProvider })
        {
            Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents, typeof(ClusterEvent.MemberRemoved));
        }
    }

    protected override void PostStop()
    {
        if (Context.System is ExtendedActorSystem { Provider: IClusterActorRefProvider })
        {
            Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);
        }
    }
}
