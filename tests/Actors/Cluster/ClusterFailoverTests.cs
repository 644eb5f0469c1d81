using Akka.Actor;
using Akka.TestKit.Xunit2;
using DistributedInference.Actors.Replica;
using DistributedInference.Models.Tasks;
using Xunit.Abstractions;

namespace DistributedInference.Actors.Tests.Cluster;

/// <summary>
/// A node shuts down mid-job (its actor system terminates; a crash of a process is left to the multi-process tests):
/// the job goes on with the others and still returns every row once, in order.
/// </summary>
[Collection(TimedTests.Collection)]
public sealed class ClusterFailoverTests : TestKit, IAsyncLifetime
{
    private readonly ITestOutputHelper _output;
    private readonly TaskCompletionSource _running = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private InProcessCluster? _cluster;

    public ClusterFailoverTests(ITestOutputHelper output)
        : base((ActorSystem?)null, output) => _output = output;

    public async Task InitializeAsync() => _cluster = await InProcessCluster.StartAsync(3, _ => new SlowEcho(TimeSpan.FromMilliseconds(100), _running));

    public async Task DisposeAsync() => await _cluster!.DisposeAsync();

    [Fact]
    public async Task A_node_shut_down_mid_job_loses_no_row()
    {
        var (splitter, _) = await _cluster!.SplitterWithEveryDevice(this);
        var client = new ReplicaClient(_cluster.Nodes[0], splitter);
        var rows = Enumerable.Range(0, 120).ToArray();
        var job = client.RunAsync(rows, new JobOptions(MaxBatchSize: 1));

        // A device runs the job's first batch: the job has been handed out (two batches in flight on every device, the
        // third node's among them) with about 4 s of batches to go.
        await _running.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await _cluster.Nodes[2].Terminate();

        var result = await job.WaitAsync(TimeSpan.FromSeconds(60));
        _output.WriteLine($"120 batches of 100 ms on 3 nodes, one shut down once the first batch ran: {result.Statistics.Elapsed.TotalSeconds:F1} s, " +
                          $"{result.Statistics.ResentBatches} batch(es) re-sent; {string.Join(", ", result.Statistics.Devices.Select(d => $"{d.Key}: {d.Value.Rows}"))}");
        Assert.Equal(rows, ((object[])result.Results!).Cast<int>());
        Assert.True(result.Statistics.ResentBatches >= 1);
    }

    // A model that takes its time and gives the rows back; says when any device first runs a batch.
    private sealed class SlowEcho(TimeSpan latency, TaskCompletionSource running) : IReplicaModel
    {
        public string Description => "slow echo";

        public ReplicaSpec? Spec => null;

        public object Run(object rows)
        {
            running.TrySetResult();
            Thread.Sleep(latency);
            return rows;
        }

        public void Dispose()
        {
        }
    }
}
