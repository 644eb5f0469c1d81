using Akka.Actor;

namespace DistributedInference.Actors.Kernel.Membership;

/// <summary>
/// The messages one <see cref="MembersOnlyActor"/> holds from addresses its node's view of the cluster does not know
/// yet, in arrival order per address. Checked every <see cref="RecheckEvery"/>: once an address is a member its
/// messages go back to the actor, wrapped in <see cref="Released"/> with their original sender, and later messages
/// from it follow them (so a sender's order is kept); an address that left, or is still unknown after
/// <c>distributed-inference.hold-unknown-senders-for</c>, has its messages dropped (one WARNING per address). At most
/// <see cref="MaximumHeld"/> messages are held per actor; beyond that, messages from unknown addresses are dropped.
/// </summary>
internal sealed class UnknownSenders
{
    internal static readonly TimeSpan RecheckEvery = TimeSpan.FromMilliseconds(100);
    internal const int MaximumHeld = 4096;

    private readonly Dictionary<Address, (DateTime Since, Queue<(object Message, IActorRef Sender)> Messages)> _held = [];
    private readonly Dictionary<Address, int> _released = [];
    private readonly TimeSpan _holdFor;
    private int _count;
    private ICancelable? _recheck;

    internal UnknownSenders(ActorSystem system) =>
        _holdFor = system.Settings.Config.GetTimeSpan("distributed-inference.hold-unknown-senders-for", TimeSpan.FromSeconds(10));

    /// <summary>
    /// A held message given back to its actor, told with its original sender; <paramref name="Token"/> is the holder
    /// itself, which no message from another process can carry (a deserialized copy is another object).
    /// </summary>
    internal sealed record Released(object Message, UnknownSenders Token);

    /// <summary>Whether <paramref name="released"/> was given back by this holder (not forged by a sender).</summary>
    internal bool Gave(Released released) => ReferenceEquals(released.Token, this);

    /// <summary>Time to check the held addresses against the cluster's view again.</summary>
    internal sealed class Recheck
    {
        internal static readonly Recheck Instance = new();

        private Recheck()
        {
        }
    }

    /// <summary>
    /// Whether a message from <paramref name="address"/> must queue behind messages of that address held or released
    /// and not yet handled, whatever its admission.
    /// </summary>
    internal bool Queues(Address address) => _held.ContainsKey(address) || _released.ContainsKey(address);

    /// <summary>Holds the message the actor of <paramref name="context"/> is handling, behind its sender's earlier ones.</summary>
    internal void Hold(IActorContext context, object message)
    {
        var sender = context.Sender;
        var address = sender.Path.Address;
        if (_released.ContainsKey(address))
        {
            Release(context.Self, address, message, sender);
            return;
        }

        if (_count >= MaximumHeld)
        {
            ClusterMembership.Refuse(context.System, context.Self, message, address, $"the sender is not a member of this cluster and {MaximumHeld} messages wait already");
            return;
        }

        if (!_held.TryGetValue(address, out var held))
        {
            held = (DateTime.UtcNow, new Queue<(object, IActorRef)>());
            _held[address] = held;
        }

        held.Messages.Enqueue((message, sender));
        _count++;
        _recheck ??= context.System.Scheduler.ScheduleTellOnceCancelable(RecheckEvery, context.Self, Recheck.Instance, ActorRefs.NoSender);
    }

    /// <summary>Gives back the messages of addresses that are members now; drops those of addresses that will not be.</summary>
    internal void Check(IActorContext context)
    {
        _recheck = null;
        foreach (var (address, held) in _held.ToList())
        {
            var member = ClusterMembership.IsMember(context.System, address);
            if (!member && !ClusterMembership.LeftTheCluster(context.System, address) && DateTime.UtcNow - held.Since < _holdFor)
            {
                continue;
            }

            _held.Remove(address);
            _count -= held.Messages.Count;
            if (member)
            {
                foreach (var (message, sender) in held.Messages)
                {
                    Release(context.Self, address, message, sender);
                }
            }
            else
            {
                ClusterMembership.Refuse(context.System, context.Self, held.Messages.Peek().Message, address, "the sender is not a member of this cluster");
            }
        }

        if (_held.Count > 0)
        {
            _recheck = context.System.Scheduler.ScheduleTellOnceCancelable(RecheckEvery, context.Self, Recheck.Instance, ActorRefs.NoSender);
        }
    }

    /// <summary>Counts a <see cref="Released"/> message from <paramref name="address"/> as handled.</summary>
    internal void Handled(Address address)
    {
        if (_released.TryGetValue(address, out var left))
        {
            if (left <= 1)
            {
                _released.Remove(address);
            }
            else
            {
                _released[address] = left - 1;
            }
        }
    }

    /// <summary>Stops the pending check (the actor stops).</summary>
    internal void Cancel() => _recheck?.Cancel();

    private void Release(IActorRef self, Address address, object message, IActorRef sender)
    {
        _released[address] = _released.GetValueOrDefault(address) + 1;
        self.Tell(new Released(message, this), sender);
    }
}
