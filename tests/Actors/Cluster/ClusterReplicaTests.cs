using Akka.Actor;
using Akka.TestKit.Xunit2;
using DistributedInference.Actors.Cluster.Planning;
using DistributedInference.Actors.Replica;
using DistributedInference.Models.Gpt2;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Tests.Cluster;

/// <summary>Three actor systems in one process form a cluster; a replica job spans them.</summary>
[Collection(TimedTests.Collection)]
public sealed class ClusterReplicaTests : TestKit, IAsyncLifetime
{
    private readonly ITestOutputHelper _output;
    private InProcessCluster? _cluster;

    public ClusterReplicaTests(ITestOutputHelper output)
        : base((ActorSystem?)null, output)
    {
        _output = output;
        LibTorch.Initialize();
    }

    public async Task InitializeAsync() =>
        _cluster = await InProcessCluster.StartAsync(3, Gpt2Replica.Factory(Gpt2Source.Resolve(Fixtures.Path("lm")), InferenceTask.Logits, ScalarType.Float32, 0));

    public async Task DisposeAsync() => await _cluster!.DisposeAsync();

    [Fact]
    public async Task The_registry_sees_every_nodes_devices_and_a_replica_job_spans_the_nodes()
    {
        var client = _cluster!.Nodes[0];
        var (splitter, registry) = await _cluster.SplitterWithEveryDevice(this);
        Assert.Equal(3, (await splitter.Ask<DeviceList>(GetDevices.Instance, TimeSpan.FromSeconds(5))).Devices.Count);
        Assert.Equal(3, (await registry.Ask<DeviceList>(GetDevices.Instance, TimeSpan.FromSeconds(5))).Devices.Count);

        // 12 rows (the fixture's 4, three times) one per batch: every node gets a share; idle ones may take others'.
        var ids = cat([Fixtures.Expected("input_ids"), Fixtures.Expected("input_ids"), Fixtures.Expected("input_ids")], 0);
        var result = await new ReplicaClient(client, splitter).RunAsync(Gpt2Replica.Rows(ids, null), new JobOptions(MaxBatchSize: 1) { Model = ModelIdentity.Of(Fixtures.Path("lm"), null) });

        var expected = cat([Fixtures.Expected("lm_logits"), Fixtures.Expected("lm_logits"), Fixtures.Expected("lm_logits")], 0);
        var diff = Fixtures.MaxAbsDiff((Tensor)result.Results!, expected);
        _output.WriteLine($"12 rows on 3 nodes: max |diff| {diff:E2}; devices {string.Join(", ", result.Statistics.Devices.Select(d => $"{d.Key}: {d.Value.Rows} rows"))}");
        Assert.True(diff <= 1e-4);
        Assert.Contains(result.Statistics.Devices, d => d.Key.Contains(':', StringComparison.Ordinal) && d.Value.Rows > 0);

        // The results of the other nodes' devices came back on the data plane.
        var remoteBatches = result.Statistics.Devices.Where(d => d.Key.Contains(':', StringComparison.Ordinal)).Sum(d => d.Value.Batches);
        Assert.InRange(Actors.Kernel.Transport.TensorDataPlane.For(client)!.FramesReceived, remoteBatches, long.MaxValue);

        // And their batches (rows of user data) went out on it too, not in Akka control messages.
        Assert.InRange(Actors.Kernel.Transport.TensorDataPlane.For(client)!.FramesSent, remoteBatches, long.MaxValue);
        Assert.InRange(_cluster.Nodes.Skip(1).Sum(node => Actors.Kernel.Transport.TensorDataPlane.For(node)!.FramesReceived), remoteBatches, long.MaxValue);

        // A job for another model finds no device serving it on any node: an input error, nothing run.
        var other = await Assert.ThrowsAsync<Models.InvalidInputException>(() =>
            new ReplicaClient(client, splitter).RunAsync(Gpt2Replica.Rows(ids, null), new JobOptions(MaxBatchSize: 1) { Model = ModelIdentity.Of("gpt2-tiny", 0) }));
        Assert.StartsWith($"no device serves model {ModelIdentity.BuiltIn("gpt2-tiny", 0)} (they serve lm #", other.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_control_nodes_a_route_runs_the_job_on_a_splitter_here_over_the_devices_serving_its_model()
    {
        var client = _cluster!.Nodes[0];
        var model = ModelIdentity.Of(Fixtures.Path("lm"), null);

        // A job for another task than the devices were loaded for is refused before it runs (the splitter it started goes).
        var wrong = await Assert.ThrowsAsync<Models.InvalidInputException>(() => ClusterReplicaRoute.OpenAsync(client, new ReplicaSpec(model, InferenceTask.Classify, Precision.Fp32), nodes: 3));
        Assert.Contains("not task classify: start the nodes with --task classify", wrong.Message, StringComparison.Ordinal);

        await using var route = await ClusterReplicaRoute.OpenAsync(client, new ReplicaSpec(model, InferenceTask.Logits, Precision.Fp32), nodes: 3);
        Assert.Equal(0, route.ControlNodes);
        Assert.False(route.ResubmitOnLoss);
        Assert.Equal("3 node(s), 3 device(s)", route.Describe());
        var result = await route.CreateClient().RunAsync(Gpt2Replica.Rows(Fixtures.Expected("input_ids"), null), new JobOptions(MaxBatchSize: 1) { Model = model });
        Assert.True(Fixtures.MaxAbsDiff((Tensor)result.Results!, Fixtures.Expected("lm_logits")) <= 1e-4);
    }

    [Fact]
    public async Task A_job_for_other_weights_of_the_same_name_and_layout_is_refused_and_one_for_a_renamed_copy_runs()
    {
        var client = _cluster!.Nodes[0];
        var folder = Directory.CreateTempSubdirectory("di-identity-").FullName;
        try
        {
            // The devices serve lm; "lm" elsewhere with one weight changed is another model, "lm-renamed" the same one.
            var changed = ModelIdentity.Of(Fixtures.CopyModel(Fixtures.Path("lm"), Path.Combine(folder, "lm"), changeOneWeight: true), null);
            var renamed = ModelIdentity.Of(Fixtures.CopyModel(Fixtures.Path("lm"), Path.Combine(folder, "lm-renamed"), changeOneWeight: false), null);
            var served = ModelIdentity.Of(Fixtures.Path("lm"), null);

            await using (var route = await ClusterReplicaRoute.OpenAsync(client, new ReplicaSpec(changed, InferenceTask.Logits, Precision.Fp32), nodes: 3))
            {
                Assert.Empty(route.Devices);
                var refused = await Assert.ThrowsAsync<Models.InvalidInputException>(() =>
                    route.CreateClient().RunAsync(Gpt2Replica.Rows(Fixtures.Expected("input_ids"), null), new JobOptions(MaxBatchSize: 1) { Model = changed }));
                Assert.Equal(
                    $"no device serves model {changed} (they serve {served} (logits, fp32)): run the job for a model they serve, or start devices with model {changed}",
                    refused.Message);
            }

            await using var same = await ClusterReplicaRoute.OpenAsync(client, new ReplicaSpec(renamed, InferenceTask.Logits, Precision.Fp32), nodes: 3);
            Assert.Equal(3, same.Devices.Count);
            var result = await same.CreateClient().RunAsync(Gpt2Replica.Rows(Fixtures.Expected("input_ids"), null), new JobOptions(MaxBatchSize: 1) { Model = renamed });
            Assert.True(Fixtures.MaxAbsDiff((Tensor)result.Results!, Fixtures.Expected("lm_logits")) <= 1e-4);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
