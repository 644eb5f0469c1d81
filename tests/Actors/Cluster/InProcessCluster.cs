using Akka.Actor;
using Akka.TestKit;
using DistributedInference.Actors.Cluster.Devices;
using DistributedInference.Actors.Cluster.Jobs;
using DistributedInference.Actors.Cluster.Nodes;
using DistributedInference.Actors.Cluster.Stages;
using DistributedInference.Actors.Kernel.Settings;
using DistributedInference.Actors.Replica;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;

namespace DistributedInference.Actors.Tests.Cluster;

/// <summary>
/// Actor systems in one process forming a cluster on 127.0.0.1 (port 0, all joining the first), as Akka.NET's own
/// multi-system specs do; each has one CPU device holding the given model, and a stage host when given a staged model.
/// </summary>
public sealed class InProcessCluster : IAsyncDisposable
{
    private InProcessCluster(IReadOnlyList<ActorSystem> nodes) => Nodes = nodes;

    public IReadOnlyList<ActorSystem> Nodes { get; }

    /// <param name="control">Every node also has the control role and hosts job coordinators (<see cref="Regions"/>).</param>
    /// <param name="keepFinishedJobsFor">How long coordinators keep a finished job (default 1 min).</param>
    public static async Task<InProcessCluster> StartAsync(int count, ReplicaModelFactory? model, ServedStages? stages = null, bool control = false, TimeSpan? keepFinishedJobsFor = null)
    {
        var nodes = Enumerable.Range(0, count).Select(_ =>
        {
            var node = ActorSystem.Create("distributed-inference", DistributedInferenceConfig.Cluster("127.0.0.1", 0, control ? [DeviceManager.Role, JobSharding.ControlRole] : [DeviceManager.Role]));
            Actors.Kernel.Transport.TensorDataPlane.For(node);
            if (model is not null)
            {
                node.ActorOf(DeviceManager.Props([DeviceName.Cpu], model), DeviceManager.ActorName);
            }

            if (stages is not null)
            {
                node.ActorOf(StageHost.Props([DeviceName.Cpu], stages.Model, stages.Task, stages.Load), StageHost.ActorName);
            }

            return node;
        }).ToList();

        var seed = Akka.Cluster.Cluster.Get(nodes[0]).SelfAddress;
        await Task.WhenAll(nodes.Select(node =>
        {
            var up = new TaskCompletionSource();
            Akka.Cluster.Cluster.Get(node).RegisterOnMemberUp(() => up.TrySetResult());
            Akka.Cluster.Cluster.Get(node).Join(seed);
            return up.Task;
        })).WaitAsync(TimeSpan.FromSeconds(30));
        var cluster = new InProcessCluster(nodes);
        if (control)
        {
            cluster.Regions = nodes.Select(node => JobSharding.StartRegion(node, keepFinishedJobsFor ?? TimeSpan.FromMinutes(1))).ToList();
        }

        return cluster;
    }

    /// <summary>Each node's job shard region (with <c>control</c>).</summary>
    public IReadOnlyList<IActorRef> Regions { get; private set; } = [];

    /// <summary>A splitter on the first node fed by a device registry, once it knows every node's device.</summary>
    public async Task<(IActorRef Splitter, IActorRef Registry)> SplitterWithEveryDevice(TestKitBase kit)
    {
        var splitter = Nodes[0].ActorOf(ReplicaSplitter.Props([]), "splitter");
        var registry = Nodes[0].ActorOf(DeviceRegistry.Props(splitter), "registry");
        await DevicesRegistered(kit, splitter, Nodes.Count);
        return (splitter, registry);
    }

    /// <summary>
    /// Returns once <paramref name="splitter"/> answers <see cref="GetDevices"/> with at least <paramref name="devices"/>
    /// devices (the registry adds them as their nodes answer it); fails after 30 s.
    /// </summary>
    public static Task DevicesRegistered(TestKitBase kit, ICanTell splitter, int devices) =>
        kit.AwaitAssertAsync(
            async () =>
            {
                var known = (await splitter.Ask<DeviceList>(GetDevices.Instance, TimeSpan.FromSeconds(5))).Devices.Count;
                Assert.True(known >= devices, $"{known} of {devices} devices registered");
            },
            TimeSpan.FromSeconds(30),
            TimeSpan.FromMilliseconds(100));

    public async ValueTask DisposeAsync() => await Task.WhenAll(Nodes.Select(n => n.Terminate()));
}
