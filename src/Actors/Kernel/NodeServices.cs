using Akka.Actor;
using DistributedInference.Actors.Kernel.Membership;
using DistributedInference.Actors.Kernel.Transport;

namespace DistributedInference.Actors.Kernel;

/// <summary>
/// What every cluster process runs beside Akka's own services, started once right after its actor system: the data
/// plane (when enabled), listening at once so that its port is checked at start and peers can find it
/// (<see cref="DataPlaneDirectory"/>), the <see cref="MembershipGate"/>, which makes every member prove the cluster
/// secret when it joins, and the <see cref="RemovedMemberQuarantine"/>, which drops what remoting keeps for members
/// that left.
/// </summary>
public static class NodeServices
{
    /// <summary>Starts the data plane, the removed members' quarantine and the membership gate of <paramref name="system"/> (a cluster node or client).</summary>
    /// <exception cref="Models.InvalidInputException">The security settings are invalid, or the data plane's port is taken.</exception>
    public static MembershipGate Start(ActorSystem system)
    {
        TensorDataPlane.For(system);
        RemovedMemberQuarantine.Start(system);
        return MembershipGate.Start(system);
    }
}
