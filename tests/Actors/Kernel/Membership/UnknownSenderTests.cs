using Akka.Actor;
using Akka.TestKit.Xunit2;
using DistributedInference.Actors.Kernel.Membership;
using DistributedInference.Actors.Kernel.Settings;
using DistributedInference.Actors.Tests.Cluster;

namespace DistributedInference.Actors.Tests.Kernel.Membership;

/// <summary>
/// A member's first messages can reach a node before the gossip that makes it a member reaches the node's view (seen
/// under load: a joining node dropped the seed's first device query as a non-member's). Here a system sends before it
/// has even joined; the node's actor holds its messages and handles them, in the order sent, once it is a member.
/// </summary>
[Collection(TimedTests.Collection)]
public sealed class UnknownSenderTests : TestKit, IAsyncLifetime
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    private InProcessCluster? _cluster;
    private ActorSystem? _latecomer;

    public async Task InitializeAsync()
    {
        _cluster = await InProcessCluster.StartAsync(1, model: null);
        _latecomer = ActorSystem.Create("distributed-inference", DistributedInferenceConfig.Cluster("127.0.0.1", 0, ["client"]));
    }

    public async Task DisposeAsync()
    {
        await _latecomer!.Terminate();
        await _cluster!.DisposeAsync();
    }

    [Fact]
    public async Task Messages_from_an_address_not_yet_a_member_are_handled_in_order_once_it_is_one()
    {
        var node = _cluster!.Nodes[0];
        var nodeAddress = Akka.Cluster.Cluster.Get(node).SelfAddress;
        var echo = node.ActorOf(Props.Create(() => new Echo()), "echo");
        node.ActorOf(Props.Create(() => new Witness(echo, TestActor)), "witness");

        var heard = new List<object>();
        var recorder = _latecomer!.ActorOf(Props.Create(() => new Recorder(heard)), "recorder");
        var remoteEcho = await _latecomer.ActorSelection(new RootActorPath(nodeAddress) / "user" / "echo").ResolveOne(Wait);
        var remoteWitness = await _latecomer.ActorSelection(new RootActorPath(nodeAddress) / "user" / "witness").ResolveOne(Wait);
        foreach (var i in Enumerable.Range(1, 5))
        {
            remoteEcho.Tell(i, recorder);
        }

        // One connection delivers in order: once the witness has the ping, the echo's mailbox holds 1-5, and its answer
        // to the witness comes after it judged them. Nothing is answered to a non-member.
        remoteWitness.Tell("ping", recorder);
        await ExpectMsgAsync("judged", Wait);
        Assert.False(ClusterMembership.IsMember(node, Akka.Cluster.Cluster.Get(_latecomer).SelfAddress));
        lock (heard)
        {
            Assert.Empty(heard);
        }

        var up = new TaskCompletionSource();
        Akka.Cluster.Cluster.Get(_latecomer).RegisterOnMemberUp(() => up.TrySetResult());
        Akka.Cluster.Cluster.Get(_latecomer).Join(nodeAddress);
        remoteEcho.Tell(6, recorder);
        await up.Task.WaitAsync(Wait);
        await AwaitAssertAsync(
            () =>
            {
                lock (heard)
                {
                    Assert.Equal([1, 2, 3, 4, 5, 6], heard);
                }
            },
            Wait,
            TimeSpan.FromMilliseconds(100));

        remoteEcho.Tell(7, recorder);
        await AwaitAssertAsync(
            () =>
            {
                lock (heard)
                {
                    Assert.Equal([1, 2, 3, 4, 5, 6, 7], heard);
                }
            },
            Wait,
            TimeSpan.FromMilliseconds(100));
    }

    private sealed class Echo : MembersOnlyActor
    {
        public Echo() => ReceiveAny(message => Sender.Tell(message));
    }

    // Not a MembersOnlyActor: it takes the outsider's ping and asks the echo (a local sender, always admitted).
    private sealed class Witness : ReceiveActor
    {
        public Witness(IActorRef echo, IActorRef test)
        {
            Receive<string>(text => text == "ping", _ => echo.Tell("judged"));
            Receive<string>(text => text == "judged", text => test.Tell(text));
        }
    }
}
