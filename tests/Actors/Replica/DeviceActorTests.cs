using Akka.Actor;
using Akka.TestKit.Xunit2;
using DistributedInference.Actors.Kernel.Rows;
using DistributedInference.Actors.Kernel.Settings;
using DistributedInference.Actors.Replica;
using DistributedInference.Models.Gpt2;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Tests.Replica;

public sealed class DeviceActorTests : TestKit
{
    public DeviceActorTests()
        : base(DistributedInferenceConfig.Default())
    {
        LibTorch.Initialize();
    }

    [Fact]
    public async Task Runs_gpt2_batches_on_its_device_and_reports_its_status()
    {
        var factory = Gpt2Replica.Factory(Gpt2Source.Resolve(Fixtures.Path("lm")), InferenceTask.Logits, ScalarType.Float32, 0);
        var device = Sys.ActorOf(DeviceActor.Props(DeviceName.Cpu, factory), DeviceActor.Name(0));
        var ids = Fixtures.Expected("input_ids");

        device.Tell(new RunBatch("job", 0, RowBatch.From(Gpt2Replica.Rows(ids.narrow(0, 0, 3), null))));
        device.Tell(new RunBatch("job", 1, RowBatch.From(Gpt2Replica.Rows(ids.narrow(0, 3, 1), null))));
        var first = await ExpectMsgAsync<BatchCompleted>(TimeSpan.FromSeconds(30));
        var second = await ExpectMsgAsync<BatchCompleted>(TimeSpan.FromSeconds(30));

        var logits = cat([(Tensor)first.Results, (Tensor)second.Results], 0);
        var diff = Fixtures.MaxAbsDiff(logits, Fixtures.Expected("lm_logits"));
        Assert.True(diff <= 1e-4, $"max |diff| {diff}");

        var status = await device.Ask<DeviceStatus>(GetDeviceStatus.Instance, TimeSpan.FromSeconds(5));
        Assert.Equal("cpu", status.Device);
        Assert.Equal(Models.Tasks.InferenceTask.Logits, status.Spec!.Task);
        Assert.Contains("(logits, fp32) on cpu", status.Description, StringComparison.Ordinal);
        Assert.Equal(2, status.CompletedBatches);
        Assert.Equal(0, status.QueueLength);
        Assert.True(status.BusyTime > TimeSpan.Zero);
    }

    [Fact]
    public async Task Input_the_model_rejects_fails_the_batch_as_not_retryable()
    {
        var factory = Gpt2Replica.Factory(Gpt2Source.Resolve(Fixtures.Path("lm")), InferenceTask.Logits, ScalarType.Float32, 0);
        var device = Sys.ActorOf(DeviceActor.Props(DeviceName.Cpu, factory));
        device.Tell(new RunBatch("job", 0, RowBatch.From(Gpt2Replica.Rows(tensor(new long[] { 5, 1000 }, [1, 2]), null))));
        var failed = await ExpectMsgAsync<BatchFailed>(TimeSpan.FromSeconds(30));
        Assert.False(failed.Retryable);
        Assert.Contains("outside the model's vocabulary", failed.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Any_torch_module_runs_in_replica_mode_across_devices()
    {
        // A small MLP, not GPT-2: the runtime only needs a factory that builds it on a device.
        // Weights from a formula, not the global random generator: device actors build replicas concurrently.
        static nn.Module<Tensor, Tensor> Mlp(Device device)
        {
            var mlp = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2));
            using (no_grad())
            {
                foreach (var p in mlp.parameters())
                {
                    p.copy_(arange(p.NumberOfElements, ScalarType.Float32).mul(0.37).sin().view(p.shape));
                }
            }

            return mlp.to(device);
        }

        var factory = ModuleReplica.Factory("mlp", Mlp);
        var devices = Enumerable.Range(0, 3).Select(i => Sys.ActorOf(DeviceActor.Props(DeviceName.Cpu, factory), DeviceActor.Name(i))).ToList();
        var splitter = Sys.ActorOf(ReplicaSplitter.Props(devices));
        var input = arange(40, ScalarType.Float32).mul(0.11).cos().view(10, 4);

        // The job owns what it is sent: it gets a handle of its own, the test keeps its input.
        splitter.Tell(new SubmitJob("mlp-job", input.alias(), new JobOptions(ApplyPadding: true, MaxBatchSize: 2), TestActor));
        await ExpectMsgAsync<JobAccepted>();
        var completed = (JobCompleted)await FishForMessageAsync(m => m is JobCompleted or JobFailed, TimeSpan.FromSeconds(30));

        using var reference = Mlp(CPU);
        using var expected = reference.forward(input);
        var results = (Tensor)completed.Results!;
        Assert.Equal(new long[] { 10, 2 }, results.shape);
        Assert.True((results - expected).abs().max().ToDouble() < 1e-6);
        Assert.Equal(3, completed.Statistics.Devices.Count);
    }
}
