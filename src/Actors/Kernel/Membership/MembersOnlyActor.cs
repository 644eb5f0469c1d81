using Akka.Actor;

namespace DistributedInference.Actors.Kernel.Membership;

/// <summary>
/// A <see cref="ReceiveActor"/> that handles only messages from this node and from members of its cluster
/// (<see cref="ClusterMembership.Judge"/>): a message from an address this node's view does not know yet is held until
/// the address is a member, then handled in the order its sender sent it; dropped if it never becomes one within
/// <c>distributed-inference.hold-unknown-senders-for</c>. Every actor that takes messages from other nodes derives
/// from it.
/// </summary>
public abstract class MembersOnlyActor : ReceiveActor
{
    private UnknownSenders? _unknown;

    /// <summary>
    /// Whether <paramref name="message"/> only ever comes from an actor (so that, on a cluster node, one without a
    /// sender is dropped); false unless overridden.
    /// </summary>
    protected virtual bool SenderRequired(object message) => false;

    /// <summary>Handles what <see cref="ClusterMembership.Judge"/> admits, holds what it holds, drops the rest (as handled).</summary>
    protected override bool AroundReceive(Receive receive, object message)
    {
        switch (message)
        {
            case UnknownSenders.Released released when _unknown is not null && _unknown.Gave(released):
                _unknown.Handled(Sender.Path.Address);
                return base.AroundReceive(receive, released.Message);
            case UnknownSenders.Released:
                // Forged (a deserialized copy carries another token): it would skip the membership check.
                return true;
            case UnknownSenders.Recheck:
                // Harmless from anyone: it only makes the holder look at the cluster's view again.
                _unknown?.Check(Context);
                return true;
        }

        if (_unknown is not null && message is not (Terminated or ReceiveTimeout) && Sender is { } sender && !sender.IsNobody() && _unknown.Queues(sender.Path.Address))
        {
            _unknown.Hold(Context, message);
            return true;
        }

        switch (ClusterMembership.Judge(Context, message, SenderRequired(message)))
        {
            case Admission.Admit:
                return base.AroundReceive(receive, message);
            case Admission.Hold:
                (_unknown ??= new UnknownSenders(Context.System)).Hold(Context, message);
                return true;
            default:
                return true;
        }
    }

    /// <inheritdoc />
    public override void AroundPostStop()
    {
        _unknown?.Cancel();
        base.AroundPostStop();
    }
}
