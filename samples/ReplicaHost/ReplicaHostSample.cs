using DistributedInference.Actors.Hosting;
using DistributedInference.Actors.Replica;
using DistributedInference.Models.Auto;
using DistributedInference.Models.Generation;
using DistributedInference.Models.Tasks;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using TorchSharp;

namespace DistributedInference.Samples.ReplicaHost;

/// <summary>A host app that embeds replica mode: two device actors on the CPU, prompts in, completions out.</summary>
public static class ReplicaHostSample
{
    /// <summary>Generates <paramref name="maxNewTokens"/> tokens for each prompt on two replicas of <paramref name="model"/>.</summary>
    /// <param name="model">A Hugging Face folder (any family <see cref="AutoModelSource"/> reads) or a built-in name.</param>
    /// <returns>One <see cref="Completion"/> per prompt, in prompt order.</returns>
    public static async Task<IReadOnlyList<Completion>> RunAsync(string model, IReadOnlyList<string> prompts, int maxNewTokens = 8)
    {
        var source = AutoModelSource.Resolve(model);
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddDistributedInference(setup => setup
            .OnDevices("cpu", "cpu")
            .WithModel(source.Replica(InferenceTask.Generate, torch.ScalarType.Float32, new GenerationOptions(MaxNewTokens: maxNewTokens))));
        using var host = builder.Build();
        await host.StartAsync();

        var client = host.Services.GetRequiredService<ReplicaClient>();
        var result = await client.RunAsync(prompts, new JobOptions(MaxBatchSize: 2) { Model = ModelIdentity.Of(source.Name, source.RandomSeed) });
        var completions = ((object[])result.Results!).Cast<Completion>().ToList();

        await host.StopAsync();
        return completions;
    }
}
