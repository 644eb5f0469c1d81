using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using DistributedInference.Actors.Kernel.Membership;
using DistributedInference.Actors.Replica;

namespace DistributedInference.Actors.Cluster.Devices;

/// <summary>
/// A node's book of the cluster's devices: it follows cluster membership and finds the devices of every node with the
/// device role (on MemberUp it asks the node's <see cref="DeviceManager"/>, again every second until it answers, since
/// a node may be Up before its devices exist), and tells its subscribers each change: <see cref="AddDevice"/> for a
/// device found (or whose node is reachable again), <see cref="RemoveDevice"/> for one whose node became unreachable
/// (running jobs re-send its batches at once instead of waiting for the node to be removed). A device that stops, or
/// whose node is removed, leaves the book; its jobs learn it from their own watch. Subscribers are the splitter given
/// at creation (if any) and whoever sends <see cref="SubscribeDevices"/> (a job coordinator, for the job it runs):
/// they are answered with the devices usable now (<see cref="DeviceList"/>), then told every change, until they stop.
/// Answers <see cref="GetDevices"/> with every device it has found.
/// </summary>
public sealed class DeviceRegistry : MembersOnlyActor, IWithTimers
{
    private static readonly TimeSpan RetryInterval = TimeSpan.FromSeconds(1);

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Dictionary<Address, List<IActorRef>> _devices = new();
    private readonly HashSet<Address> _unreachable = [];
    private readonly HashSet<Address> _waiting = [];
    private readonly HashSet<IActorRef> _subscribers = [];

    /// <param name="splitter">A splitter to feed from the start (it watches each device it is given); null: none.</param>
    public DeviceRegistry(IActorRef? splitter)
    {
        if (splitter is not null)
        {
            _subscribers.Add(splitter);
        }

        Receive<ClusterEvent.MemberUp>(up => HandleMemberUp(up.Member));
        Receive<ClusterEvent.MemberRemoved>(removed => HandleMemberGone(removed.Member.Address));
        Receive<ClusterEvent.UnreachableMember>(unreachable => HandleReachability(unreachable.Member.Address, reachable: false));
        Receive<ClusterEvent.ReachableMember>(reachable => HandleReachability(reachable.Member.Address, reachable: true));
        Receive<DeviceList>(HandleDeviceList);
        Receive<AskAgain>(_ => AskWaiting());
        Receive<GetDevices>(_ => Sender.Tell(new DeviceList(_devices.Values.SelectMany(d => d).ToList())));
        Receive<SubscribeDevices>(_ => HandleSubscribe(Sender));
        Receive<Terminated>(HandleTerminated);
    }

    public ITimerScheduler Timers { get; set; } = null!;

    /// <param name="splitter">A splitter to feed with every device; null: only subscribers are told.</param>
    public static Props Props(IActorRef? splitter) => Akka.Actor.Props.Create(() => new DeviceRegistry(splitter));

    protected override void PreStart() =>
        Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents, typeof(ClusterEvent.MemberUp), typeof(ClusterEvent.MemberRemoved), typeof(ClusterEvent.UnreachableMember), typeof(ClusterEvent.ReachableMember));

    protected override void PostStop() => Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);

    // Subscriptions come from actors of this node only (a coordinator for its job).
    protected override bool SenderRequired(object message) => message is SubscribeDevices;

    // The devices a job may use now: found, and on a reachable node.
    private List<IActorRef> Usable() =>
        _devices.Where(pair => !_unreachable.Contains(pair.Key)).SelectMany(pair => pair.Value).ToList();

    private void HandleSubscribe(IActorRef subscriber)
    {
        if (_subscribers.Add(subscriber))
        {
            Context.Watch(subscriber);
        }

        subscriber.Tell(new DeviceList(Usable()));
    }

    private void Publish(object message)
    {
        foreach (var subscriber in _subscribers)
        {
            subscriber.Tell(message);
        }
    }

    private void HandleTerminated(Terminated terminated)
    {
        if (_subscribers.Remove(terminated.ActorRef))
        {
            return;
        }

        // A device that stopped (its manager gave up restarting it): its jobs saw it stop through their own watch.
        var address = terminated.ActorRef.Path.Address.HasLocalScope ? Akka.Cluster.Cluster.Get(Context.System).SelfAddress : terminated.ActorRef.Path.Address;
        if (_devices.TryGetValue(address, out var devices))
        {
            devices.Remove(terminated.ActorRef);
        }
    }

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
        _unreachable.Remove(address);
        if (_devices.Remove(address, out var gone))
        {
            gone.ForEach(device => Context.Unwatch(device));
            _log.Info("node {0} left with {1} device(s)", address, gone.Count);
        }
    }

    // Unreachable: jobs stop using the node's devices now (heartbeats notice in seconds, removal takes longer);
    // reachable again: they get them back.
    private void HandleReachability(Address address, bool reachable)
    {
        if (!(reachable ? _unreachable.Remove(address) : _unreachable.Add(address)) || !_devices.TryGetValue(address, out var devices))
        {
            return;
        }

        _log.Warning("node {0} {1}", address, reachable ? "reachable again: its devices are back" : "unreachable: its devices are set aside");
        foreach (var device in devices)
        {
            Publish(reachable ? new AddDevice(device) : new RemoveDevice(device));
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
            Context.Watch(device);
            if (!_unreachable.Contains(address))
            {
                Publish(new AddDevice(device));
            }
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
