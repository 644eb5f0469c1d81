using Akka.Actor;
using DistributedInference.Actors.Kernel.Membership;
using DistributedInference.Actors.Replica;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;

namespace DistributedInference.Actors.Cluster.Devices;

/// <summary>
/// The devices of one node, at the fixed path <c>/user/devices</c> on every node with the <see cref="Role"/> role:
/// it creates one device actor per local device and tells anyone who asks (<see cref="GetLocalDevices"/>) which they
/// are. Device actors stay on their node; other nodes find them here. A device actor recovers from forward errors on
/// its own (<see cref="DeviceRecovery"/>); one that throws anyway is restarted (its model built again) at most
/// <see cref="MaxRestarts"/> times a minute, then stopped (jobs re-send its batches to other devices).
/// </summary>
public sealed class DeviceManager : MembersOnlyActor
{
    public const string ActorName = "devices";
    public const string Role = "device";

    public const int MaxRestarts = 3;

    private readonly List<IActorRef> _devices = [];

    public DeviceManager(IReadOnlyList<DeviceName> devices, ReplicaModelFactory model)
    {
        CpuThreads.ShareAmong(devices);
        for (var i = 0; i < devices.Count; i++)
        {
            _devices.Add(Context.ActorOf(DeviceActor.Props(devices[i], model), DeviceActor.Name(i)));
            Context.Watch(_devices[^1]);
        }

        Receive<GetLocalDevices>(_ => Sender.Tell(new DeviceList(_devices.ToList())));
        Receive<Terminated>(t => _devices.Remove(t.ActorRef));
    }

    protected override SupervisorStrategy SupervisorStrategy() =>
        new OneForOneStrategy(MaxRestarts, TimeSpan.FromMinutes(1), Decider.From(
            Directive.Restart,
            Directive.Stop.When<ActorKilledException>(),
            Directive.Stop.When<ActorInitializationException>()));

    public static Props Props(IReadOnlyList<DeviceName> devices, ReplicaModelFactory model) =>
        Akka.Actor.Props.Create(() => new DeviceManager(devices, model));
}
