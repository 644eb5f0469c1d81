using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using DistributedInference.Actors.Kernel.Membership;
using DistributedInference.Actors.Replica;

namespace DistributedInference.Actors.Cluster.Devices;

/// <summary>
/// Follows cluster membership and hands the devices of every node with the device role to a splitter: on MemberUp
/// it asks the node's <see cref="DeviceManager"/> (again every second until it answers, since a node may be Up before
/// its devices exist), and the splitter watches each device it is given. An unreachable node's devices are taken
/// from the splitter at once (its running jobs re-send their batches) and given back if it becomes reachable. Answers <see cref="GetDevices"/> with every
/// device it has found. Each device goes to the splitter with its node's data-plane endpoint (from the node's own
/// <see cref="DeviceList"/>, which came over Akka from that member), where jobs send its batches.
/// </summary>
public sealed class DeviceRegistry : MembersOnlyActor, IWithTimers
{
    private static readonly TimeSpan RetryInterval = TimeSpan.FromSeconds(1);

    private readonly IActorRef _splitter;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Dictionary<Address, List<IActorRef>> _devices = new();
    private readonly HashSet<Address> _waiting = [];

    public DeviceRegistry(IActorRef splitter)
    {
        _splitter = splitter;
        Receive<ClusterEvent.MemberUp>(up => HandleMemberUp(up.Member));
        Receive<ClusterEvent.MemberRemoved>(removed => HandleMemberGone(removed.Member.Address));
        Receive<ClusterEvent.UnreachableMember>(unreachable => Tell(unreachable.Member.Address, "unreachable: its devices are set aside", d => new RemoveDevice(d)));
        Receive<ClusterEvent.ReachableMember>(reachable => Tell(reachable.Member.Address, "reachable again: its devices are back", d => new AddDevice(d)));
        Receive<DeviceList>(HandleDeviceList);
        Receive<AskAgain>(_ => AskWaiting());
        Receive<GetDevices>(_ => Sender.Tell(new DeviceList(_devices.Values.SelectMany(d => d).ToList())));
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(IActorRef splitter) => Akka.Actor.Props.Create(() => new DeviceRegistry(splitter));

    protected override void PreStart() =>
        Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents, typeof(ClusterEvent.MemberUp), typeof(ClusterEvent.MemberRemoved), typeof(ClusterEvent.UnreachableMember), typeof(ClusterEvent.ReachableMember));

    protected override void PostStop() => Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);

    private void HandleMemberUp(Member member)
    {
        if (!member.HasRole(DeviceManager.Role) || _devices.ContainsKey(member.Address))
        {
            return;
        }

        _waiting.Add(member.Address);
        AskWaiting();
    }

    private void HandleMemberGone(Address address)
    {
        _waiting.Remove(address);
        if (_devices.Remove(address, out var gone))
        {
            _log.Info("node {0} left with {1} device(s)", address, gone.Count);
        }
    }

    // Unreachable: the splitter stops using the node's devices now (heartbeats notice in seconds, removal takes longer);
    // reachable again: it gets them back.
    private void Tell(Address address, string what, Func<IActorRef, object> message)
    {
        if (_devices.TryGetValue(address, out var devices))
        {
            _log.Warning("node {0} {1}", address, what);
            devices.ForEach(d => _splitter.Tell(message(d)));
        }
    }

    private void HandleDeviceList(DeviceList list)
    {
        var address = Sender.Path.Address.HasLocalScope ? Akka.Cluster.Cluster.Get(Context.System).SelfAddress : Sender.Path.Address;
        if (!_waiting.Remove(address))
        {
            return;
        }

        _devices[address] = list.Devices.ToList();
        foreach (var device in list.Devices)
        {
            _splitter.Tell(new AddDevice(device));
        }

        _log.Info("node {0}: {1} device(s)", address, list.Devices.Count);
    }

    private void AskWaiting()
    {
        foreach (var address in _waiting)
        {
            Context.ActorSelection(new RootActorPath(address) / "user" / DeviceManager.ActorName).Tell(GetLocalDevices.Instance);
        }

        if (_waiting.Count > 0)
        {
            Timers.StartSingleTimer("ask-again", AskAgain.Instance, RetryInterval);
        }
    }

    private sealed class AskAgain
    {
        public static readonly AskAgain Instance = new();
    }
}
