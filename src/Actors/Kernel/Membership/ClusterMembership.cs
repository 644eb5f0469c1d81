using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Akka.Actor;
using Akka.Cluster;
using Akka.Event;

namespace DistributedInference.Actors.Kernel.Membership;

/// <summary>
/// Who may send to this node's actors: on a cluster node (the cluster actor-ref provider), only this node and the
/// current members of its cluster (Joining, WeaklyUp, Up or Leaving; not Exiting, Down or Removed, nor a process that
/// never joined); the <see cref="MembershipGate"/> downs members that do not prove the cluster secret. Akka.Remote
/// without TLS delivers a message from any process that reaches the Akka port, so every actor that takes messages
/// from other nodes drops, through <see cref="MembersOnlyActor"/>, those from anyone else, logging each such sender
/// address once at WARNING. A system without the cluster provider (in-process runtimes, tests) sends only to itself,
/// so there every sender is allowed.
/// </summary>
public static class ClusterMembership
{
    private static readonly ConditionalWeakTable<ActorSystem, ConcurrentDictionary<Address, byte>> Warned = new();

    /// <summary>
    /// Whether a message from <paramref name="address"/> may reach <paramref name="system"/>'s actors: always without
    /// the cluster provider; otherwise when the address is local, this node's, or a current member's.
    /// </summary>
    public static bool IsMember(ActorSystem system, Address address)
    {
        if (system is not ExtendedActorSystem { Provider: IClusterActorRefProvider } || address.HasLocalScope)
        {
            return true;
        }

        var cluster = Akka.Cluster.Cluster.Get(system);
        return address.Equals(cluster.SelfAddress)
            || cluster.State.Members.Any(m => m.Address.Equals(address)
                && m.Status is MemberStatus.Joining or MemberStatus.WeaklyUp or MemberStatus.Up or MemberStatus.Leaving);
    }

    /// <summary>
    /// Whether the message the actor of <paramref name="context"/> is about to handle may be handled: its sender is
    /// a member (<see cref="IsMember"/>), and, on a cluster node, a message that only ever comes from an actor
    /// (<paramref name="senderRequired"/>) has a sender at all (a remote message without one arrives from dead
    /// letters). Death-watch notices and receive timeouts are always admitted. Logs a refused sender's address once.
    /// </summary>
    public static bool Admits(IActorContext context, object message, bool senderRequired)
    {
        if (message is Terminated or ReceiveTimeout)
        {
            return true;
        }

        var system = context.System;
        var sender = context.Sender;
        if (sender is null || sender.IsNobody() || sender.Equals(system.DeadLetters))
        {
            if (!senderRequired || system is not ExtendedActorSystem { Provider: IClusterActorRefProvider })
            {
                return true;
            }

            Warn(system, context.Self, message, sender?.Path.Address ?? system.DeadLetters.Path.Address, "it has no sender");
            return false;
        }

        var address = sender.Path.Address;
        if (IsMember(system, address))
        {
            return true;
        }

        Warn(system, context.Self, message, address, "the sender is not a member of this cluster");
        return false;
    }

    // Exiting or Down in this node's view, or removed within the last minute (RemovedMemberQuarantine remembers).
    private static bool LeftTheCluster(ActorSystem system, Address address) =>
        system is ExtendedActorSystem { Provider: IClusterActorRefProvider }
        && (Akka.Cluster.Cluster.Get(system).State.Members.Any(m => m.Address.Equals(address) && m.Status is MemberStatus.Exiting or MemberStatus.Down)
            || RemovedMemberQuarantine.RemovedRecently(system, address));

    private static void Warn(ActorSystem system, IActorRef self, object message, Address address, string why)
    {
        // A member that is leaving or just left (its last retries still on the way) is normal cluster life: information.
        if (LeftTheCluster(system, address))
        {
            system.Log.Info("membership: {0} drops {1} from {2}: it left the cluster", self.Path, message.GetType().Name, address);
            return;
        }

        if (Warned.GetValue(system, _ => new ConcurrentDictionary<Address, byte>()).TryAdd(address, 0))
        {
            system.Log.Warning("membership: {0} drops {1} from {2}: {3} (further messages from there are dropped without notice)", self.Path, message.GetType().Name, address, why);
        }
    }
}

/// <summary>
/// A <see cref="ReceiveActor"/> that handles only what <see cref="ClusterMembership.Admits"/> admits: messages from
/// this node and from current cluster members. Every actor that takes messages from other nodes derives from it.
/// </summary>
public abstract class MembersOnlyActor : ReceiveActor
{
    /// <summary>
    /// Whether <paramref name="message"/> only ever comes from an actor (so that, on a cluster node, one without a
    /// sender is dropped); false unless overridden.
    /// </summary>
    protected virtual bool SenderRequired(object message) => false;

    /// <summary>Drops (as handled) a message <see cref="ClusterMembership.Admits"/> refuses; handles the rest.</summary>
    protected override bool AroundReceive(Receive receive, object message) =>
        !ClusterMembership.Admits(Context, message, SenderRequired(message)) || base.AroundReceive(receive, message);
}
