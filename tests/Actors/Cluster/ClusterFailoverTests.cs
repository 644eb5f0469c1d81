using Akka.Actor;
using DistributedInference.Actors.Replica;
using DistributedInference.Models.Tasks;
using Xunit.Abstractions;

namespace DistributedInference.Actors.Tests.Cluster;

/// <summary>
/// A node shuts down mid-job (its actor system terminates; a crash of a process is left to the multi-process tests):
/// the job goes on with the others and still returns every row once, in order.
/// </summary>
[Collection(TimedTests.Collection)]
public sealed class ClusterFailoverTests : IAsyncLifetime
{
    private readonly ITestOutputHelper _output;
    private InProcessCluster? _cluster;

    public ClusterFailoverTests(ITestOutputHelper output) => _output = output;

    public async Task InitializeAsync() => _cluster = await InProcessCluster.StartAsync(3, _ => new SlowEcho(TimeSpan.FromMilliseconds(100)));

    public async Task DisposeAsync() => await _cluster!.DisposeAsync();

    [Fact]
    public async Task A_node_shut_down_mid_job_loses_no_row()
    {
        var (splitter, _) = await _cluster!.SplitterWithEveryDevice();
        var client = new ReplicaClient(_cluster.Nodes[0], splitter);
        var rows = Enumerable.Range(0, 120).ToArray();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var job = client.RunAsync(rows, new JobOptions(MaxBatchSize: 1));
        await Task.Delay(500);
        await _cluster.Nodes[2].Terminate();

        var result = await job.WaitAsync(TimeSpan.FromSeconds(60));
        _output.WriteLine($"120 batches of 100 ms on 3 nodes, one shut down after 0.5 s: {clock.Elapsed.TotalSeconds:F1} s, " +
                          $"{result.Statistics.ResentBatches} batch(es) re-sent; {string.Join(", ", result.Statistics.Devices.Select(d => $"{d.Key}: {d.Value.Rows}"))}");
        Assert.Equal(rows, ((object[])result.Results!).Cast<int>());
        Assert.True(result.Statistics.ResentBatches >= 1);
    }

    // A model that takes its time and gives the rows back.
    private sealed class SlowEcho(TimeSpan latency) : IReplicaModel
    {
        public string Description => "slow echo";

        public object Run(object rows)
        {
            Thread.Sleep(latency);
            return rows;
        }

        public void Dispose()
        {
        }
    }
}
