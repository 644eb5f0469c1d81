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
/// from other nodes judges each message through <see cref="MembersOnlyActor"/>: a member's is handled; one from an
/// address this node's view does not know yet is held until it does (a member's first message can arrive before
/// the gossip that announces it reaches <see cref="Akka.Cluster.Cluster.State"/>, Akka's read view, updated
/// asynchronously) and dropped, with one WARNING per address, if it never does; one from a member that left is dropped
/// at INFO. A system without the cluster provider (in-process runtimes, tests) sends only to itself, so there every
/// sender is allowed.
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
    /// What the actor of <paramref name="context"/> does with the message it is about to handle:
    /// <see cref="Admission.Admit"/> when its sender is a member (<see cref="IsMember"/>) or the message is a
    /// death-watch notice or a receive timeout; <see cref="Admission.Drop"/> when, on a cluster node, a message that
    /// only ever comes from an actor (<paramref name="senderRequired"/>) has no sender (a remote message without one
    /// arrives from dead letters), or its sender has left the cluster; <see cref="Admission.Hold"/> when its sender
    /// is not (yet) a member in this node's view. Logs a dropped sender's address once.
    /// </summary>
    public static Admission Judge(IActorContext context, object message, bool senderRequired)
    {
        if (message is Terminated or ReceiveTimeout)
        {
            return Admission.Admit;
        }

        var system = context.System;
        var sender = context.Sender;
        if (sender is null || sender.IsNobody() || sender.Equals(system.DeadLetters))
        {
            if (!senderRequired || system is not ExtendedActorSystem { Provider: IClusterActorRefProvider })
            {
                return Admission.Admit;
            }

            Refuse(system, context.Self, message, sender?.Path.Address ?? system.DeadLetters.Path.Address, "it has no sender");
            return Admission.Drop;
        }

        var address = sender.Path.Address;
        if (IsMember(system, address))
        {
            return Admission.Admit;
        }

        if (LeftTheCluster(system, address))
        {
            Refuse(system, context.Self, message, address, "it left the cluster");
            return Admission.Drop;
        }

        return Admission.Hold;
    }

    /// <summary>
    /// Logs that <paramref name="self"/> drops <paramref name="message"/> from <paramref name="address"/>: at INFO
    /// when that address is leaving or has just left the cluster (normal cluster life), otherwise at WARNING once per
    /// address with <paramref name="why"/>.
    /// </summary>
    public static void Refuse(ActorSystem system, IActorRef self, object message, Address address, string why)
    {
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

    /// <summary>Exiting or Down in this node's view, or removed recently (<see cref="RemovedMemberQuarantine"/>).</summary>
    public static bool LeftTheCluster(ActorSystem system, Address address) =>
        system is ExtendedActorSystem { Provider: IClusterActorRefProvider }
        && (Akka.Cluster.Cluster.Get(system).State.Members.Any(m => m.Address.Equals(address) && m.Status is MemberStatus.Exiting or MemberStatus.Down)
            || RemovedMemberQuarantine.RemovedRecently(system, address));
}
