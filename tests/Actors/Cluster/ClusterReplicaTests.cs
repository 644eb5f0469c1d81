using Akka.Actor;
using DistributedInference.Actors.Cluster;
using DistributedInference.Actors.Configuration;
using DistributedInference.Actors.Replica;
using DistributedInference.Models.Gpt2;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Tests.Cluster;

/// <summary>Three actor systems in one process form a cluster on 127.0.0.1 (port 0, joining the first), as Akka.NET's own multi-system specs do.</summary>
[Collection(TimedTests.Collection)]
public sealed class ClusterReplicaTests : IAsyncLifetime
{
    private const string SystemName = "distributed-inference";
    private readonly List<ActorSystem> _nodes = [];
    private readonly ITestOutputHelper _output;

    public ClusterReplicaTests(ITestOutputHelper output)
    {
        _output = output;
        LibTorch.Initialize();
    }

    public async Task InitializeAsync()
    {
        var factory = Gpt2Replica.Factory(Gpt2Source.Resolve(Fixtures.Path("lm")), InferenceTask.Logits, ScalarType.Float32, 0);
        for (var i = 0; i < 3; i++)
        {
            var node = ActorSystem.Create(SystemName, DistributedInferenceConfig.Cluster("127.0.0.1", 0, [DeviceManager.Role]));
            node.ActorOf(DeviceManager.Props([DeviceName.Cpu], factory), DeviceManager.ActorName);
            _nodes.Add(node);
        }

        var seed = Akka.Cluster.Cluster.Get(_nodes[0]).SelfAddress;
        var up = _nodes.Select(node =>
        {
            var joined = new TaskCompletionSource();
            Akka.Cluster.Cluster.Get(node).RegisterOnMemberUp(() => joined.TrySetResult());
            Akka.Cluster.Cluster.Get(node).Join(seed);
            return joined.Task;
        }).ToList();
        await Task.WhenAll(up).WaitAsync(TimeSpan.FromSeconds(30));
    }

    public async Task DisposeAsync() => await Task.WhenAll(_nodes.Select(n => n.Terminate()));

    [Fact]
    public async Task The_registry_sees_every_nodes_devices_and_a_replica_job_spans_the_nodes()
    {
        var client = _nodes[0];
        var splitter = client.ActorOf(ReplicaSplitter.Props([]), "splitter");
        var registry = client.ActorOf(DeviceRegistry.Props(splitter), "registry");

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        DeviceList devices;
        do
        {
            await Task.Delay(100);
            devices = await splitter.Ask<DeviceList>(GetDevices.Instance, TimeSpan.FromSeconds(5));
        }
        while (devices.Devices.Count < 3 && DateTime.UtcNow < deadline);
        Assert.Equal(3, devices.Devices.Count);
        Assert.Equal(3, (await registry.Ask<DeviceList>(GetDevices.Instance, TimeSpan.FromSeconds(5))).Devices.Count);

        // 12 rows (the fixture's 4, three times) one per batch: every node gets a share; idle ones may take others'.
        var ids = cat([Fixtures.Expected("input_ids"), Fixtures.Expected("input_ids"), Fixtures.Expected("input_ids")], 0);
        var result = await new ReplicaClient(client, splitter).RunAsync(Gpt2Replica.Rows(ids, null), new JobOptions(MaxBatchSize: 1));

        var expected = cat([Fixtures.Expected("lm_logits"), Fixtures.Expected("lm_logits"), Fixtures.Expected("lm_logits")], 0);
        var diff = Fixtures.MaxAbsDiff((Tensor)result.Results!, expected);
        _output.WriteLine($"12 rows on 3 nodes: max |diff| {diff:E2}; devices {string.Join(", ", result.Statistics.Devices.Select(d => $"{d.Key}: {d.Value.Rows} rows"))}");
        Assert.True(diff <= 1e-4);
        Assert.Contains(result.Statistics.Devices, d => d.Key.Contains(':', StringComparison.Ordinal) && d.Value.Rows > 0);
    }
}
