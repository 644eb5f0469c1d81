using DistributedInference.Actors.Hosting;
using DistributedInference.Actors.Replica;
using DistributedInference.Models;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Tests.Hosting;

public sealed class HostingTests
{
    public HostingTests() => LibTorch.Initialize();

    private static nn.Module<Tensor, Tensor> Doubler(Device device) => nn.Sequential(nn.Identity()).to(device);

    [Fact]
    public async Task A_host_app_runs_jobs_through_the_registered_client_and_streams_results()
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddDistributedInference(setup => setup
            .OnDevices("cpu,cpu,cpu")
            .WithModel(ModuleReplica.Factory("identity", Doubler)));
        using var host = builder.Build();
        await host.StartAsync();
        try
        {
            var client = host.Services.GetRequiredService<ReplicaClient>();
            using var input = arange(10, ScalarType.Float32).view(10, 1);
            var progress = new List<JobProgress>();
            var result = await client.RunAsync(input, new JobOptions(ApplyPadding: true, MaxBatchSize: 2), new SynchronousProgress(progress));
            Assert.Equal(input.data<float>().ToArray(), ((Tensor)result.Results!).data<float>().ToArray());
            Assert.Equal(new JobProgress(10, 10), progress[^1]);
            Assert.Equal(3, result.Statistics.Devices.Count);

            var streamed = new List<RowsCompleted>();
            await foreach (var rows in client.StreamAsync(input, new JobOptions(MaxBatchSize: 3)))
            {
                streamed.Add(rows);
            }

            Assert.Equal(Enumerable.Range(0, 10), streamed.SelectMany(r => Enumerable.Range(r.Start, r.Count)).Order());
        }
        finally
        {
            await host.StopAsync();
        }
    }

    [Fact]
    public async Task Input_errors_surface_as_invalid_input()
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddDistributedInference(setup => setup.OnDevices("cpu").WithModel(ModuleReplica.Factory("identity", Doubler)));
        using var host = builder.Build();
        await host.StartAsync();
        try
        {
            var client = host.Services.GetRequiredService<ReplicaClient>();
            var error = await Assert.ThrowsAsync<InvalidInputException>(() => client.RunAsync("not rows"));
            Assert.StartsWith("cannot split a string", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            await host.StopAsync();
        }
    }

    [Fact]
    public async Task Start_up_fails_with_the_cause_when_no_device_can_load_the_model()
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddDistributedInference(setup => setup
            .OnDevices("cpu", "cpu")
            .WithModel(_ => throw new InvalidInputException("model.safetensors: tensor h.0.attn.c_attn.weight is missing")));
        using var host = builder.Build();
        var error = await Assert.ThrowsAsync<InvalidInputException>(() => host.StartAsync());
        Assert.Equal("no device could load the model: cpu: model.safetensors: tensor h.0.attn.c_attn.weight is missing; cpu: model.safetensors: tensor h.0.attn.c_attn.weight is missing", error.Message);
        await host.StopAsync();
    }

    [Fact]
    public async Task Start_up_waits_for_the_devices_and_goes_on_when_one_of_them_loaded()
    {
        var loaded = 0;
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddDistributedInference(setup => setup
            .OnDevices("cpu", "cpu")
            .WithModel(device => Interlocked.Increment(ref loaded) == 1 ? ModuleReplica.Factory("identity", Doubler)(device) : throw new InvalidOperationException("out of memory")));
        using var host = builder.Build();
        await host.StartAsync();
        try
        {
            using var input = arange(4, ScalarType.Float32).view(4, 1);
            var result = await host.Services.GetRequiredService<ReplicaClient>().RunAsync(input);
            Assert.Equal(input.data<float>().ToArray(), ((Tensor)result.Results!).data<float>().ToArray());
        }
        finally
        {
            await host.StopAsync();
        }
    }

    [Fact]
    public void A_setup_without_devices_or_model_is_a_clear_error()
    {
        var services = new ServiceCollection();
        Assert.Contains("at least one device", Assert.Throws<InvalidInputException>(() => services.AddDistributedInference(_ => { })).Message, StringComparison.Ordinal);
        Assert.Contains("needs a model", Assert.Throws<InvalidInputException>(() => services.AddDistributedInference(s => s.OnDevices("cpu"))).Message, StringComparison.Ordinal);
    }

    private sealed class SynchronousProgress(List<JobProgress> seen) : IProgress<JobProgress>
    {
        public void Report(JobProgress value)
        {
            lock (seen)
            {
                seen.Add(value);
            }
        }
    }

    [Fact]
    public async Task A_host_app_outside_a_launch_gets_a_process_state_of_one()
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddProcessState();
        using var host = builder.Build();
        await host.StartAsync();
        var state = host.Services.GetRequiredService<Actors.Processes.ProcessState>();
        Assert.Same(state, host.Services.GetRequiredService<Actors.Processes.ProcessState>());
        Assert.Equal((0, 1, true), (state.ProcessIndex, state.NumProcesses, state.IsMainProcess));
        Assert.Equal(["a dog", "a cat"], state.SplitBetweenProcesses(["a dog", "a cat"], applyPadding: true));
        await host.StopAsync();
    }
}
