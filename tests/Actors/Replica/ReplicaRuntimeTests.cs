using DistributedInference.Actors.Replica;
using DistributedInference.Models;
using DistributedInference.Models.Gpt2;
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
        Assert.All(statuses, s => Assert.Equal("linear on cpu", s.Description));

        var result = await runtime.Client.RunAsync(ones(5, 3), new JobOptions(MaxBatchSize: 2));
        Assert.Equal(new long[] { 5, 2 }, ((Tensor)result.Results!).shape);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-5)]
    public async Task A_load_timeout_that_is_not_positive_is_refused_before_anything_starts(int seconds)
    {
        var factory = ModuleReplica.Factory("linear", device => nn.Linear(3, 2).to(device));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => ReplicaRuntime.StartAsync([DeviceName.Cpu], factory, loadTimeout: TimeSpan.FromSeconds(seconds)));
        await Assert.ThrowsAsync<InvalidInputException>(() => ReplicaRuntime.StartAsync([], factory));
    }

    [Fact]
    public async Task Prompts_are_a_job_too_one_completion_per_prompt_in_order()
    {
        string[] prompts = ["a dog", "a cat sat on the mat", "a chicken", "x", "Once upon a time"];
        var source = Gpt2Source.Resolve("gpt2-tiny");
        await using var runtime = await ReplicaRuntime.StartAsync(
            [DeviceName.Cpu, DeviceName.Cpu, DeviceName.Cpu], Gpt2Replica.Factory(source, InferenceTask.Generate, ScalarType.Float32, maxNewTokens: 5));

        var result = await runtime.Client.RunAsync(prompts, new JobOptions(ApplyPadding: true, MaxBatchSize: 1));

        var completions = ((object[])result.Results!).Cast<Completion>().ToList();
        Assert.Equal(prompts, completions.Select(c => c.Prompt));
        using var alone = Gpt2TaskModel.Load(source, InferenceTask.Generate, CPU, ScalarType.Float32, maxNewTokens: 5);
        foreach (var completion in completions)
        {
            var ids = Models.Tokenization.Gpt2Tokenizer.Instance.Encode(completion.Prompt).Select(i => (long)i).ToArray();
            using var output = alone.Run(tensor(ids, [1, ids.Length]), null);
            Assert.Equal(alone.Continuation(output[0], ids.Length), completion.OutputIds);
            Assert.Equal(Models.Tokenization.Gpt2Tokenizer.Instance.Decode(completion.OutputIds), completion.Text);
        }
    }

    [Fact]
    public async Task Prompt_logits_keep_each_prompts_own_length()
    {
        var source = Gpt2Source.Resolve("gpt2-tiny");
        await using var runtime = await ReplicaRuntime.StartAsync([DeviceName.Cpu, DeviceName.Cpu], Gpt2Replica.Factory(source, InferenceTask.Logits, ScalarType.Float32, 0));
        var result = await runtime.Client.RunAsync(new[] { "Hello world", "a" }, new JobOptions(MaxBatchSize: 2));
        var logits = ((object[])result.Results!).Cast<Tensor>().ToList();
        Assert.Equal([2L, 50257], logits[0].shape);
        Assert.Equal([1L, 50257], logits[1].shape);
    }

    [Fact]
    public async Task A_model_that_cannot_load_fails_the_start_with_its_reason()
    {
        ReplicaModelFactory broken = _ => throw new InvalidInputException("weights not found");
        var error = await Assert.ThrowsAsync<InvalidInputException>(() => ReplicaRuntime.StartAsync([DeviceName.Cpu], broken));
        Assert.Equal("cpu: could not load the model: weights not found", error.Message);
    }
}
