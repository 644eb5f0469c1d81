using Akka.Actor;
using Akka.Configuration;
using Akka.TestKit.Xunit2;
using DistributedInference.Actors.Configuration;
using DistributedInference.Actors.Replica;
using DistributedInference.Actors.Simulation;
using DistributedInference.Actors.Tests.Cluster;

namespace DistributedInference.Actors.Tests.Replica;

/// <summary>The client side of a job: our settings as its defaults, the job timeout, and a job whose home goes away.</summary>
[Collection(TimedTests.Collection)]
public sealed class ReplicaClientTests : TestKit
{
    public ReplicaClientTests()
        : base(ConfigurationFactory.ParseString("distributed-inference { job-timeout = 2s, max-batch-size = 3 }").WithFallback(DistributedInferenceConfig.Default()))
    {
    }

    [Fact]
    public async Task A_job_without_options_takes_its_batch_size_from_the_configuration()
    {
        var splitter = Sys.ActorOf(ReplicaSplitter.Props([Sys.ActorOf(SimulatedDevice.Props("sim-0"))]));
        var result = await new ReplicaClient(Sys, splitter).RunAsync(Enumerable.Range(0, 7).ToArray());
        Assert.Equal(Enumerable.Range(0, 7), ((object[])result.Results!).Cast<int>());
        Assert.Equal(3, result.Statistics.Devices.Single().Value.Batches);
    }

    [Fact]
    public async Task A_job_that_outlasts_the_job_timeout_is_cancelled_with_a_clear_error()
    {
        var slow = Sys.ActorOf(SimulatedDevice.Props("slow", new SimulatedDeviceOptions { BatchLatency = TimeSpan.FromSeconds(1) }));
        var splitter = Sys.ActorOf(ReplicaSplitter.Props([slow]));
        var error = await Assert.ThrowsAsync<JobFailedException>(() => new ReplicaClient(Sys, splitter).RunAsync(Enumerable.Range(0, 10).ToArray(), new JobOptions(MaxBatchSize: 1)));
        Assert.Contains("did not finish within 00:00:02 (distributed-inference.job-timeout)", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_client_hears_when_the_node_that_answers_for_its_job_goes_away()
    {
        await using var cluster = await InProcessCluster.StartAsync(2, model: null);
        var (bridge, reader) = ChannelBridge.Open(cluster.Nodes[0], watchFirstSender: true);
        var answerer = cluster.Nodes[1].ActorOf(Props.Create(() => new Answerer()), "answerer");
        var remote = await cluster.Nodes[0].ActorSelection(answerer.Path.ToStringWithAddress(Akka.Cluster.Cluster.Get(cluster.Nodes[1]).SelfAddress)).ResolveOne(TimeSpan.FromSeconds(10));
        remote.Tell("hello", bridge);
        Assert.Equal("hello", await reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10)));

        await cluster.Nodes[1].Terminate();
        var lost = Assert.IsType<AnswererLost>(await reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(Akka.Cluster.Cluster.Get(cluster.Nodes[1]).SelfAddress, lost.Node);
    }

    private sealed class Answerer : ReceiveActor
    {
        public Answerer() => ReceiveAny(message => Sender.Tell(message));
    }
}
