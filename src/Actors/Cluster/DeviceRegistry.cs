using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using DistributedInference.Actors.Replica;

namespace DistributedInference.Actors.Cluster;

/// <summary>
/// Follows cluster membership and hands the devices of every node with the device role to a splitter: on MemberUp
/// it asks the node's <see cref="DeviceManager"/> (again every second until it answers, since a node may be Up before
/// its devices exist), and the splitter watches each device it is given. Answers <see cref="GetDevices"/> with every
/// device it has found.
/// </summary>
public sealed class DeviceRegistry : ReceiveActor, IWithTimers
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
        Receive<DeviceList>(HandleDeviceList);
        Receive<AskAgain>(_ => AskWaiting());
        Receive<GetDevices>(_ => Sender.Tell(new DeviceList(_devices.Values.SelectMany(d => d).ToList())));
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(IActorRef splitter) => Akka.Actor.Props.Create(() => new DeviceRegistry(splitter));

    protected override void PreStart() =>
        Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents, typeof(ClusterEvent.MemberUp), typeof(ClusterEvent.MemberRemoved));

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
            _log.Warning("node {0} left with {1} device(s)", address, gone.Count);
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
