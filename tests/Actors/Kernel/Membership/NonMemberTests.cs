using Akka.Actor;
using Akka.Configuration;
using Akka.TestKit.Xunit2;
using DistributedInference.Actors.Cluster.Devices;
using DistributedInference.Actors.Kernel.Membership;
using DistributedInference.Actors.Kernel.Rows;
using DistributedInference.Actors.Kernel.Settings;
using DistributedInference.Actors.Replica;
using DistributedInference.Actors.Tests.Cluster;
using DistributedInference.Models.Gpt2;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Tests.Kernel.Membership;

/// <summary>
/// A plain Akka.Remote system that reaches a cluster node's Akka port on 127.0.0.1 without ever joining: the node's
/// actors drop whatever it sends (device removal, job submission, device queries, with or without a sender), while a
/// member's messages are handled and a member's job still runs on the device the outsider tried to remove.
/// </summary>
[Collection(TimedTests.Collection)]
public sealed class NonMemberTests : TestKit, IAsyncLifetime
{
    private static readonly TimeSpan Quiet = TimeSpan.FromSeconds(2);
    private InProcessCluster? _cluster;
    private ActorSystem? _outsider;

    public NonMemberTests() => LibTorch.Initialize();

    public async Task InitializeAsync()
    {
        _cluster = await InProcessCluster.StartAsync(2, Gpt2Replica.Factory(Gpt2Source.Resolve(Fixtures.Path("lm")), InferenceTask.Logits, ScalarType.Float32, 0));
        _outsider = ActorSystem.Create(
            "distributed-inference",
            ConfigurationFactory.ParseString("akka.actor.provider = remote").WithFallback(DistributedInferenceConfig.Cluster("127.0.0.1", 0, [])));
    }

    public async Task DisposeAsync()
    {
        await _outsider!.Terminate();
        await _cluster!.DisposeAsync();
    }

    [Fact]
    public async Task A_non_member_cannot_remove_a_device_or_submit_a_job_while_members_are_served()
    {
        var node = _cluster!.Nodes[0];
        var (splitter, _) = await _cluster.SplitterWithEveryDevice(this);
        var devices = (await splitter.Ask<DeviceList>(GetDevices.Instance, TimeSpan.FromSeconds(5))).Devices;
        Assert.Equal(2, devices.Count);
        var nodeAddress = Akka.Cluster.Cluster.Get(node).SelfAddress;
        var remoteSplitter = new RootActorPath(nodeAddress) / "user" / "splitter";

        // A member (the second node) is answered by the first node's splitter and device manager.
        var member = _cluster.Nodes[1];
        Assert.Equal(2, (await member.ActorSelection(remoteSplitter).Ask<DeviceList>(GetDevices.Instance, TimeSpan.FromSeconds(10))).Devices.Count);
        Assert.Single((await member.ActorSelection(new RootActorPath(nodeAddress) / "user" / DeviceManager.ActorName).Ask<DeviceList>(GetLocalDevices.Instance, TimeSpan.FromSeconds(10))).Devices);

        // The outsider reaches the port (Akka answers Identify itself) but its questions go unanswered.
        var outsiderSplitter = await _outsider!.ActorSelection(remoteSplitter).ResolveOne(TimeSpan.FromSeconds(10));
        await Assert.ThrowsAsync<AskTimeoutException>(() => outsiderSplitter.Ask<DeviceList>(GetDevices.Instance, Quiet));
        await Assert.ThrowsAsync<AskTimeoutException>(() =>
            _outsider.ActorSelection(new RootActorPath(nodeAddress) / "user" / DeviceManager.ActorName).Ask<DeviceList>(GetLocalDevices.Instance, Quiet));

        // It removes every device it can name, with a sender and without one, and submits a job: nothing happens.
        var heard = new List<object>();
        var recorder = _outsider.ActorOf(Props.Create(() => new Recorder(heard)), "recorder");
        foreach (var device in devices)
        {
            var named = await _outsider.ActorSelection(device.Path.ToStringWithAddress(nodeAddress)).ResolveOne(TimeSpan.FromSeconds(10));
            outsiderSplitter.Tell(new RemoveDevice(named), recorder);
            outsiderSplitter.Tell(new RemoveDevice(named), ActorRefs.NoSender);
        }

        var ids = Fixtures.Expected("input_ids");
        // The job owns what it is sent (released once serialized): it gets a handle of its own, ids are used again below.
        outsiderSplitter.Tell(new SubmitJob("outsider-job", RowBatch.From(Gpt2Replica.Rows(ids.alias(), null)), new JobOptions(MaxBatchSize: 1), recorder, StreamResults: false), recorder);
        await Task.Delay(Quiet);
        Assert.Equal(2, (await splitter.Ask<DeviceList>(GetDevices.Instance, TimeSpan.FromSeconds(5))).Devices.Count);
        lock (heard)
        {
            Assert.Empty(heard);
        }

        // A member's job still runs on both devices.
        var memberSplitter = await member.ActorSelection(remoteSplitter).ResolveOne(TimeSpan.FromSeconds(10));
        var result = await new ReplicaClient(member, memberSplitter)
            .RunAsync(Gpt2Replica.Rows(ids, null), new JobOptions(MaxBatchSize: 1) { Model = ModelIdentity.Of(Fixtures.Path("lm"), null) });
        Assert.True(Fixtures.MaxAbsDiff((Tensor)result.Results!, Fixtures.Expected("lm_logits")) <= 1e-4);
        Assert.True(ClusterMembership.IsMember(node, Akka.Cluster.Cluster.Get(member).SelfAddress));
        Assert.False(ClusterMembership.IsMember(node, ((ExtendedActorSystem)_outsider).Provider.DefaultAddress));
    }
}
