using Akka.Actor;
using Akka.Configuration;
using Akka.TestKit.Xunit2;
using DistributedInference.Actors.Kernel.Requests;
using DistributedInference.Actors.Kernel.Settings;
using DistributedInference.Actors.Replica;
using DistributedInference.Actors.Replica.Simulation;
using DistributedInference.Actors.Tests.Cluster;

namespace DistributedInference.Actors.Tests.Replica;

/// <summary>The client side of a job: our settings as its defaults, the job timeout, and a job whose home goes away.</summary>
[Collection(TimedTests.Collection)]
public sealed class ReplicaClientTests : TestKit
{
    public ReplicaClientTests()
        : base(ConfigurationFactory.ParseString("distributed-inference { job-timeout = 2s, max-batch-size = 3, submit-timeout = 1s }").WithFallback(DistributedInferenceConfig.Default()))
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
    public async Task A_submission_that_nothing_acknowledges_within_the_submit_timeout_fails_with_a_clear_error()
    {
        // A job home that never answers (a lost submission, a coordinator that is not there): the call ends, on every path.
        var silent = CreateTestProbe();
        var client = new ReplicaClient(Sys, silent.Ref);
        var run = await Assert.ThrowsAsync<JobFailedException>(() => client.RunAsync(Enumerable.Range(0, 4).ToArray()));
        Assert.Contains("nothing acknowledged the submission (no job coordinator or splitter answered) within 1 s (distributed-inference.submit-timeout)", run.Message, StringComparison.Ordinal);
        var stream = await Assert.ThrowsAsync<JobFailedException>(async () =>
        {
            await foreach (var _ in client.StreamAsync(Enumerable.Range(0, 4).ToArray()))
            {
            }
        });
        Assert.Contains("(distributed-inference.submit-timeout)", stream.Message, StringComparison.Ordinal);
        silent.ExpectMsg<SubmitJob>();
    }

    [Fact]
    public async Task A_call_whose_token_is_already_cancelled_submits_nothing()
    {
        var splitter = CreateTestProbe();
        var client = new ReplicaClient(Sys, splitter.Ref);
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.RunAsync(Enumerable.Range(0, 4).ToArray(), cancellation: cancelled.Token));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var _ in client.StreamAsync(Enumerable.Range(0, 4).ToArray(), cancellation: cancelled.Token))
            {
            }
        });
        Assert.False(splitter.HasMessages, "a cancelled call sent the job's home a message");
    }

    [Fact]
    public async Task A_job_submitted_without_its_input_asks_its_client_for_it_and_fails_when_it_does_not_come()
    {
        var splitter = Sys.ActorOf(ReplicaSplitter.Props([Sys.ActorOf(SimulatedDevice.Props("sim-0"))]));

        // The input comes when asked (by the data plane between nodes): the job runs on it.
        var client = CreateTestProbe();
        splitter.Tell(new SubmitJob("asked", Array.Empty<object>(), new JobOptions(MaxBatchSize: 2), client.Ref, InputOnRequest: true));
        var fetch = await client.ExpectMsgAsync<FetchJobInput>();
        Assert.Equal("asked", fetch.JobId);
        fetch.ReplyTo.Tell(new JobInput("asked", Enumerable.Range(0, 5).Cast<object>().ToArray()), client.Ref);
        Assert.Equal(5, (await client.ExpectMsgAsync<JobAccepted>()).Rows);
        object message;
        while ((message = await client.ReceiveOneAsync(TimeSpan.FromSeconds(10))) is not JobCompleted)
        {
            Assert.IsType<RowsCompleted>(message);
        }

        var completed = (JobCompleted)message;
        Assert.Equal(Enumerable.Range(0, 5), ((object[])completed.Results!).Cast<int>());

        // It never comes: the job fails after distributed-inference.submit-timeout, saying so.
        var silent = CreateTestProbe();
        splitter.Tell(new SubmitJob("never", Array.Empty<object>(), new JobOptions(), silent.Ref, InputOnRequest: true));
        await silent.ExpectMsgAsync<FetchJobInput>();
        var failed = await silent.ExpectMsgAsync<JobFailed>(TimeSpan.FromSeconds(10));
        Assert.Equal("the client did not send the job's input within 1 s (distributed-inference.submit-timeout)", failed.Reason);
    }

    [Fact]
    public async Task A_client_hears_when_the_node_that_answers_for_its_job_goes_away()
    {
        await using var cluster = await InProcessCluster.StartAsync(2, model: null);
        var answerer = cluster.Nodes[1].ActorOf(Props.Create(() => new Answerer()), "answerer");
        var remote = await cluster.Nodes[0].ActorSelection(answerer.Path.ToStringWithAddress(Akka.Cluster.Cluster.Get(cluster.Nodes[1]).SelfAddress)).ResolveOne(TimeSpan.FromSeconds(10));
        await using var request = Request.Start(cluster.Nodes[0], remote, _ => "hello", new RequestPolicy { Watch = RequestWatch.FirstAnswerer, AnnounceAnswerer = true });
        Assert.Equal(new AnswererFound(Akka.Cluster.Cluster.Get(cluster.Nodes[1]).SelfAddress), await request.NextAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal("hello", await request.NextAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10)));

        await cluster.Nodes[1].Terminate();
        var lost = Assert.IsType<AnswererLost>(await request.NextAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(Akka.Cluster.Cluster.Get(cluster.Nodes[1]).SelfAddress, lost.Node);
    }

    [Fact]
    public async Task An_answerer_on_the_clients_own_node_is_named_by_the_nodes_address()
    {
        await using var cluster = await InProcessCluster.StartAsync(1, model: null);
        var answerer = cluster.Nodes[0].ActorOf(Props.Create(() => new Answerer()), "local-answerer");
        await using var request = Request.Start(cluster.Nodes[0], answerer, _ => "hello", new RequestPolicy { Watch = RequestWatch.FirstAnswerer, AnnounceAnswerer = true });
        Assert.Equal(new AnswererFound(Akka.Cluster.Cluster.Get(cluster.Nodes[0]).SelfAddress), await request.NextAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
    }

    private sealed class Answerer : ReceiveActor
    {
        public Answerer() => ReceiveAny(message => Sender.Tell(message));
    }
}
