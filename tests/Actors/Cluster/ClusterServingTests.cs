using Akka.Actor;
using Akka.TestKit.Xunit2;
using DistributedInference.Actors.Cluster.Devices;
using DistributedInference.Actors.Serving;
using DistributedInference.Actors.Tests.Serving;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Serving;
using DistributedInference.Models.Tasks;

using DistributedInference.Tests.Shared;

namespace DistributedInference.Actors.Tests.Cluster;

/// <summary>
/// A server's <see cref="ClusterGenerationEngine"/> over two nodes' generation hosts (scripted engines): a sequence
/// whose host stops mid-stream goes on on the other host with no token lost or repeated, and a regenerated token that
/// differs from the one already sent is counted.
/// </summary>
public sealed class ClusterServingTests : TestKit
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);
    private static readonly ModelIdentity Model = new("lm", new string('a', 64));

    [Theory]
    [InlineData(0, new long[] { 10, 11, 12, 13, 14, 15 }, 0)]
    [InlineData(100, new long[] { 10, 11, 112, 113, 114, 115 }, 1)]
    public async Task A_sequence_whose_host_stops_goes_on_on_the_other_host_from_where_it_was(long otherOffset, long[] expected, long diverged)
    {
        await using var cluster = await InProcessCluster.StartAsync(3, null);
        var server = cluster.Nodes[0];
        using var hosts = GenerationHosts.Start(server, Model, Precision.Fp32, DeviceManager.Role);
        using var counted = new CounterSum(Actors.Kernel.Telemetry.Instrumentation.Prefix + "serve.sequences.diverged");

        // Only the first host is there when the request starts: it takes it, and holds it after 2 tokens.
        var first = new ScriptedEngine { HoldAfter = 2 };
        var firstHost = Host(cluster.Nodes[1], first);
        await AwaitConditionAsync(() => Task.FromResult(hosts.Current.Length == 1), Bound);
        var request = new GenerationRequest("cmpl-1-0", [10, 7], new SamplingParameters(6, 0), []);
        await using var stream = new ClusterGenerationEngine(server, hosts, Model) { LostGrace = TimeSpan.Zero }.GenerateAsync(request).GetAsyncEnumerator();
        var tokens = new List<long>();
        while (tokens.Count < 2 && await stream.MoveNextAsync().AsTask().WaitAsync(Bound))
        {
            tokens.AddRange(stream.Current.Tokens.Select(t => t.TokenId));
        }

        // A second host (its tokens shifted by otherOffset: a node that regenerates other tokens), then the first stops.
        var second = new ScriptedEngine { Offset = otherOffset };
        Host(cluster.Nodes[2], second);
        await AwaitConditionAsync(() => Task.FromResult(hosts.Current.Length == 2), Bound);
        cluster.Nodes[1].Stop(firstHost);
        FinishReason? finished = null;
        while (finished is null && await stream.MoveNextAsync().AsTask().WaitAsync(Bound))
        {
            tokens.AddRange(stream.Current.Tokens.Select(t => t.TokenId));
            finished = stream.Current.Finished;
        }

        Assert.Equal(expected, tokens);
        Assert.Equal(FinishReason.Length, finished);
        Assert.True(second.HasStarted(request.RequestId));
        Assert.Equal(diverged, counted.Total);
    }

    private static IActorRef Host(ActorSystem node, ScriptedEngine engine) =>
        node.ActorOf(GenerationHost.Props(new ServedGenerationSetup(Model, Precision.Fp32, () => new RunningEngines(engine, 1, 512, engine))), GenerationHost.ActorName);
}
