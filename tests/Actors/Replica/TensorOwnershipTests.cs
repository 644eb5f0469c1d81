using Akka.Actor;
using Akka.TestKit.Xunit2;
using DistributedInference.Actors.Cluster.Nodes;
using DistributedInference.Actors.Cluster.Planning;
using DistributedInference.Actors.Kernel.Settings;
using DistributedInference.Actors.Kernel.Transport;
using DistributedInference.Actors.Pipeline;
using DistributedInference.Actors.Replica;
using DistributedInference.Actors.Replica.Simulation;
using DistributedInference.Actors.Tests.Cluster;
using DistributedInference.Models.Gpt2;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Tests.Replica;

/// <summary>
/// Who owns a tensor: the sender lets go, the receiver disposes, whatever is kept is cloned. Counted with TorchSharp's
/// live tensor count, so these run alone (no other test makes or frees tensors meanwhile).
/// </summary>
[Collection(TimedTests.Collection)]
public sealed class TensorOwnershipTests : TestKit
{
    public TensorOwnershipTests()
        : base(DistributedInferenceConfig.Default())
    {
        LibTorch.Initialize();
    }

    [Fact]
    public async Task A_client_that_disposes_every_tensor_it_receives_while_the_job_runs_does_not_break_the_job()
    {
        var devices = Enumerable.Range(0, 3).Select(i => Sys.ActorOf(SimulatedDevice.Props($"sim-{i}", new SimulatedDeviceOptions
        {
            Compute = rows => ((Tensor)rows).mul(2),
        }), $"sim-{i}")).ToList();
        var splitter = Sys.ActorOf(ReplicaSplitter.Props(devices));
        var client = CreateTestProbe();
        using var input = arange(40, ScalarType.Float32).view(20, 2);

        splitter.Tell(new SubmitJob("job", input.alias(), new JobOptions(ApplyPadding: true, MaxBatchSize: 2), client.Ref));
        await client.ExpectMsgAsync<JobAccepted>();
        var streamed = 0;
        while (true)
        {
            var message = await client.ReceiveOneAsync(TimeSpan.FromSeconds(30));
            if (message is RowsCompleted rows)
            {
                using var results = (Tensor)rows.Results!;
                using var expected = input.narrow(0, rows.Start, rows.Count).mul(2);
                Assert.True(results.allclose(expected));
                streamed += rows.Count;
                continue;
            }

            var completed = Assert.IsType<JobCompleted>(message);
            using var all = (Tensor)completed.Results!;
            using var doubled = input.mul(2);
            Assert.True(all.allclose(doubled));
            break;
        }

        Assert.Equal(20, streamed);
    }

    [Fact]
    public async Task Many_replica_and_pipeline_jobs_leave_no_live_tensor_behind()
    {
        await using var replica = await ReplicaRuntime.StartAsync([DeviceName.Cpu, DeviceName.Cpu], ModuleReplica.Factory("mlp", Mlp), Sys);
        await using var pipeline = await PipelineRuntime.StartAsync([() => new Doubling(first: true), () => new Doubling(first: false)], Sys);
        using var input = arange(52, ScalarType.Float32).mul(0.1).view(13, 4);

        async Task RunJobs(int count)
        {
            for (var i = 0; i < count; i++)
            {
                var result = await replica.Client.RunAsync(input, new JobOptions(ApplyPadding: i % 2 == 0, MaxBatchSize: 2));
                ((Tensor)result.Results!).Dispose();
                await foreach (var rows in replica.Client.StreamAsync(input, new JobOptions(MaxBatchSize: 3)))
                {
                    ((Tensor)rows.Results!).Dispose();
                }

                var output = await pipeline.RunAsync(input, numChunks: 3);
                ((Tensor)output.Output).Dispose();
            }
        }

        // Devices free a batch's rows right after answering: the count settles once the last job's batches are freed.
        await AssertLeavesNoTensor(RunJobs);
    }

    [Fact]
    public async Task Many_replica_and_pipeline_jobs_across_two_nodes_on_the_data_plane_leave_no_live_tensor_behind()
    {
        // Two nodes in this process, each with a device (an MLP replica) and a stage host (the GPT-2 fixture), a splitter
        // on each fed with both devices. Batches cross as RunBatch (Akka) and come back as BatchCompleted (data plane);
        // a client on node 1 gets its job's rows from node 0 on the data plane; micro-batches go stage to stage and back
        // to the coordinator on the data plane.
        await using var cluster = await InProcessCluster.StartAsync(
            2,
            ModuleReplica.Factory("mlp", Mlp),
            new ServedStages(ModelIdentity.Of(Fixtures.Path("lm"), null), InferenceTask.Logits, () => Gpt2StagedModel.Load(Gpt2Source.Resolve(Fixtures.Path("lm")), InferenceTask.Logits)),
            control: true);
        var (near, far) = (cluster.Nodes[0], cluster.Nodes[1]);
        var splitter = await EveryDevice(near, near);
        var remoteSplitter = await EveryDevice(far, near);
        var local = new ReplicaClient(near, splitter);
        var remote = new ReplicaClient(far, remoteSplitter);
        var hosts = await ClusterPipelinePlanner.FindHostsAsync(near, 2, TimeSpan.FromSeconds(30));
        await using var pipeline = await PipelineRuntime.StartAsync(ClusterPipelinePlanner.Plan(hosts, ModelIdentity.Of(Fixtures.Path("lm"), null), InferenceTask.Logits, "auto", Precision.Fp32).Placements, near);
        Assert.Equal(2, pipeline.Stages.Select(s => s.Path.Address).Distinct().Count());
        using var input = arange(52, ScalarType.Float32).mul(0.1).view(13, 4);
        using var ids = Fixtures.Expected("input_ids");
        var framesBefore = cluster.Nodes.Sum(n => TensorDataPlane.For(n)!.FramesReceived);

        async Task RunJobs(int count)
        {
            for (var i = 0; i < count; i++)
            {
                var result = await local.RunAsync(input, new JobOptions(ApplyPadding: i % 2 == 0, MaxBatchSize: 2));
                ((Tensor)result.Results!).Dispose();
                await foreach (var rows in remote.StreamAsync(input, new JobOptions(MaxBatchSize: 3)))
                {
                    rows.Results!.Dispose();
                }

                var output = await pipeline.RunAsync(new Dictionary<string, object> { ["input_ids"] = ids }, numChunks: 2);
                output.Output.Dispose();
            }
        }

        // Whatever was sent was released by its sender's transport, whatever was received by its receiver.
        await AssertLeavesNoTensor(RunJobs);
        Assert.True(cluster.Nodes.Sum(n => TensorDataPlane.For(n)!.FramesReceived) - framesBefore >= 11 * 4, "the jobs' rows did not cross on the data plane");
    }

    // A node's splitter (the control role's), as seen from `from`, once it knows both nodes' devices.
    private async Task<IActorRef> EveryDevice(ActorSystem from, ActorSystem on)
    {
        var address = Akka.Cluster.Cluster.Get(on).SelfAddress;
        var splitter = await from.ActorSelection(new RootActorPath(address) / "user" / ReplicaSplitter.ActorName).ResolveOne(TimeSpan.FromSeconds(10));
        await InProcessCluster.DevicesRegistered(this, splitter, 2);
        return splitter;
    }

    private static nn.Module<Tensor, Tensor> Mlp(Device device)
    {
        var mlp = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3));
        using (no_grad())
        {
            foreach (var p in mlp.parameters())
            {
                p.copy_(arange(p.NumberOfElements, ScalarType.Float32).mul(0.37).sin().view(p.shape));
            }
        }

        return mlp.to(device);
    }

    // A stage that doubles its rows. The first frees nothing (its stage actor frees the input it does not return); the
    // second frees its input itself, which is allowed too.
    private sealed class Doubling(bool first) : IStageWork
    {
        public string Description => "doubling";

        public object Run(object payload)
        {
            var input = (Tensor)payload;
            var output = input.mul(2);
            if (!first)
            {
                input.Dispose();
            }

            return output;
        }

        public void Dispose()
        {
        }
    }

    // Warm up (first calls may cache), flush other tests' garbage, count, run 10 rounds: the live tensor count must come
    // back to where it was. Finalizers can only lower the count, so a leak shows as a count above the baseline.
    private async Task AssertLeavesNoTensor(Func<int, Task> runJobs)
    {
        await runJobs(1);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var baseline = Tensor.TotalCount;
        await runJobs(10);
        await AwaitAssertAsync(() => Assert.True(Tensor.TotalCount <= baseline, $"{Tensor.TotalCount - baseline} tensors more than before the jobs"), TimeSpan.FromSeconds(30));
    }
}
