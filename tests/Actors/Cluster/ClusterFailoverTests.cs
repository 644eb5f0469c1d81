using Akka.Actor;
using DistributedInference.Actors.Cluster;
using DistributedInference.Actors.Configuration;
using DistributedInference.Actors.Replica;
using DistributedInference.Models.Runtime;
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
    private readonly List<ActorSystem> _nodes = [];
    private readonly ITestOutputHelper _output;

    public ClusterFailoverTests(ITestOutputHelper output) => _output = output;

    public async Task InitializeAsync()
    {
        for (var i = 0; i < 3; i++)
        {
            var node = ActorSystem.Create("distributed-inference", DistributedInferenceConfig.Cluster("127.0.0.1", 0, [DeviceManager.Role]));
            node.ActorOf(DeviceManager.Props([DeviceName.Cpu], _ => new SlowEcho(TimeSpan.FromMilliseconds(100))), DeviceManager.ActorName);
            _nodes.Add(node);
        }

        var seed = Akka.Cluster.Cluster.Get(_nodes[0]).SelfAddress;
        await Task.WhenAll(_nodes.Select(node =>
        {
            var up = new TaskCompletionSource();
            Akka.Cluster.Cluster.Get(node).RegisterOnMemberUp(() => up.TrySetResult());
            Akka.Cluster.Cluster.Get(node).Join(seed);
            return up.Task;
        })).WaitAsync(TimeSpan.FromSeconds(30));
    }

    public async Task DisposeAsync() => await Task.WhenAll(_nodes.Select(n => n.Terminate()));

    [Fact]
    public async Task A_node_shut_down_mid_job_loses_no_row()
    {
        var splitter = _nodes[0].ActorOf(ReplicaSplitter.Props([]), "splitter");
        _nodes[0].ActorOf(DeviceRegistry.Props(splitter), "registry");
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while ((await splitter.Ask<DeviceList>(GetDevices.Instance, TimeSpan.FromSeconds(5))).Devices.Count < 3 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }

        var client = new ReplicaClient(_nodes[0], splitter);
        var rows = Enumerable.Range(0, 120).ToArray();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var job = client.RunAsync(rows, new JobOptions(MaxBatchSize: 1));
        await Task.Delay(500);
        await _nodes[2].Terminate();

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
