using DistributedInference.Actors.Replica;
using DistributedInference.Models;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Tests.Replica;

public sealed class ReplicaRuntimeTests
{
    public ReplicaRuntimeTests() => LibTorch.Initialize();

    [Fact]
    public async Task Starts_once_every_device_is_loaded_and_reports_their_status()
    {
        var factory = ModuleReplica.Factory("linear", device => nn.Linear(3, 2).to(device));
        await using var runtime = await ReplicaRuntime.StartAsync([DeviceName.Cpu, DeviceName.Cpu], factory);
        var statuses = await runtime.DeviceStatusAsync();
        Assert.Equal(2, statuses.Count);
        Assert.All(statuses, s => Assert.Equal("linear on cpu", s.Model));

        var result = await runtime.Client.RunAsync(ones(5, 3), new JobOptions(MaxBatchSize: 2));
        Assert.Equal(new long[] { 5, 2 }, ((Tensor)result.Results!).shape);
    }

    [Fact]
    public async Task A_model_that_cannot_load_fails_the_start_with_its_reason()
    {
        ReplicaModelFactory broken = _ => throw new InvalidInputException("weights not found");
        var error = await Assert.ThrowsAsync<InvalidInputException>(() => ReplicaRuntime.StartAsync([DeviceName.Cpu], broken));
        Assert.Equal("cpu: could not load the model: weights not found", error.Message);
    }
}
