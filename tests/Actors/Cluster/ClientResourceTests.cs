using System.Diagnostics;
using Akka.Actor;
using Akka.TestKit.Xunit2;
using DistributedInference.Actors.Cluster.Jobs;
using DistributedInference.Actors.Cluster.Planning;
using DistributedInference.Actors.Kernel.Membership;
using DistributedInference.Actors.Kernel.Settings;
using DistributedInference.Actors.Kernel.Transport;
using DistributedInference.Actors.Replica;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Tests.Cluster;

/// <summary>
/// A node that serves clients for a month holds resources for its live peers only: clients that join, run a replica
/// job through the job region (input and results on the data plane) and leave, one after another, leave no data-plane
/// connection or thread (<see cref="TensorDataPlane.Threads"/>: the node's own, whatever else runs in this test
/// process) and no actor behind in the node.
/// </summary>
[Collection(TimedTests.Collection)]
public sealed class ClientResourceTests : TestKit, IAsyncLifetime
{
    private const int WarmUp = 3;
    private const int Clients = 8;
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private readonly ITestOutputHelper _output;
    private InProcessCluster? _cluster;

    public ClientResourceTests(ITestOutputHelper output)
        : base(DistributedInferenceConfig.Default(), output: output)
    {
        _output = output;
        LibTorch.Initialize();
    }

    public async Task InitializeAsync()
    {
        _cluster = await InProcessCluster.StartAsync(1, ModuleReplica.Factory("linear", Linear), control: true, keepFinishedJobsFor: TimeSpan.FromSeconds(1));
        RemovedMemberQuarantine.Start(_cluster.Nodes[0], TimeSpan.FromMilliseconds(500));
    }

    public async Task DisposeAsync() => await _cluster!.DisposeAsync();

    private static nn.Module<Tensor, Tensor> Linear(Device device)
    {
        var linear = nn.Linear(4, 3);
        using (no_grad())
        {
            foreach (var p in linear.parameters())
            {
                p.copy_(arange(p.NumberOfElements, ScalarType.Float32).mul(0.37).sin().view(p.shape));
            }
        }

        return linear.to(device);
    }

    // Every actor of `system` (user and system guardians' trees) but the job region's shards, which are at most
    // JobSharding's shard count, however many jobs ran (their entities, the coordinators, are counted).
    private static int Actors(ActorSystem system)
    {
        var shards = ((ExtendedActorSystem)system).SystemGuardian.Path / "sharding" / JobSharding.TypeName;
        int Count(IActorRef actor) =>
            (actor.Path.Parent.Equals(shards) ? 0 : 1) + (actor is ActorRefWithCell cell ? cell.Children.Sum(Count) : 0);
        var extended = (ExtendedActorSystem)system;
        return Count(extended.Guardian) + Count(extended.SystemGuardian);
    }

    // One `di infer --join` as an actor system: join the node, run a small job through the region, leave.
    private async Task RunClient(ActorSystem node, int number, int? actors = null)
    {
        var seed = Akka.Cluster.Cluster.Get(node).SelfAddress;
        var client = ActorSystem.Create("distributed-inference", DistributedInferenceConfig.Cluster("127.0.0.1", 0, ["client"], [seed.ToString()]));
        long compactions;
        try
        {
            TensorDataPlane.For(client);
            var up = new TaskCompletionSource();
            Akka.Cluster.Cluster.Get(client).RegisterOnMemberUp(() => up.TrySetResult());
            await up.Task.WaitAsync(Timeout);
            using var rows = arange(40 * 4, ScalarType.Float32).view(40, 4);
            var replica = ClusterReplicaRoute.RegionClient(client, _ => Task.FromResult(JobSharding.StartProxy(client)));
            var result = await replica.RunAsync(rows, new JobOptions(MaxBatchSize: 8)).WaitAsync(Timeout);
            using var results = (Tensor)result.Results!;
            Assert.Equal([40L, 3L], results.shape);
        }
        finally
        {
            compactions = GC.GetGCMemoryInfo(GCKind.FullBlocking).Index;
            await CoordinatedShutdown.Get(client).Run(CoordinatedShutdown.ClusterLeavingReason.Instance).WaitAsync(Timeout);
            await client.WhenTerminated.WaitAsync(Timeout);
        }

        // The node has seen the client go: it is no member any more, and nothing of the data plane is left for it.
        var plane = TensorDataPlane.For(node)!;
        await AwaitAssertAsync(
            () =>
            {
                Assert.Single(Akka.Cluster.Cluster.Get(node).State.Members);
                Assert.Equal(0, plane.OutgoingConnections);
                Assert.Equal(0, plane.OpenConnections);
                Assert.Equal(0, plane.Threads);
                Assert.InRange(Actors(node), 0, actors ?? int.MaxValue);

                // ... and its heap was compacted after it left (RemovedMemberQuarantine), so what it left is given back.
                Assert.True(GC.GetGCMemoryInfo(GCKind.FullBlocking).Index > compactions, "no full compacting collection after the client left");
                return Task.CompletedTask;
            },
            Timeout);
        _output.WriteLine($"client {number}: {Actors(node)} actor(s) in the node, {Process.GetCurrentProcess().Threads.Count} thread(s) in this test process");
    }

    [Fact]
    public async Task Clients_that_join_run_a_job_and_leave_leave_no_connection_thread_or_actor_in_the_node()
    {
        var node = _cluster!.Nodes[0];
        for (var i = 0; i < WarmUp; i++)
        {
            await RunClient(node, i);
        }

        // A client's coordinator passivates a second after its job, and what remoting kept for it goes half a second
        // after it left: by then the node has as many actors as after the first clients, whatever came after them.
        var actors = Actors(node);
        for (var i = WarmUp; i < WarmUp + Clients; i++)
        {
            await RunClient(node, i, actors);
        }
    }
}
