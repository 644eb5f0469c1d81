using DistributedInference.Actors.Hosting;
using DistributedInference.Actors.Replica;
using DistributedInference.Models.Auto;
using DistributedInference.Models.Generation;
using DistributedInference.Models.Tasks;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using TorchSharp;

namespace DistributedInference.Samples.ClusterNode;

/// <summary>
/// A host app that is a node of a DistributedInference cluster (the cluster <c>di node</c> processes form): it offers
/// its devices, and its <see cref="ReplicaClient"/> runs jobs on the devices of every node.
/// </summary>
public static class ClusterNodeSample
{
    /// <summary>Logits of each row of <paramref name="inputIds"/> from the cluster's replicas of <paramref name="model"/>.</summary>
    /// <param name="model">A Hugging Face folder or a built-in name; every node serves the same one.</param>
    /// <param name="inputIds">[B, T] int64 token ids.</param>
    /// <param name="join">host:port of a node of the cluster to join; none: this node starts the cluster.</param>
    /// <returns>[B, T, vocab] float32, owned by the caller.</returns>
    public static async Task<torch.Tensor> RunAsync(string model, torch.Tensor inputIds, string? join = null)
    {
        var source = AutoModelSource.Resolve(model);
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddDistributedInferenceNode(setup =>
        {
            setup.ListenOn("127.0.0.1", 0).OnDevices("cpu");  // roles: device and control by default; WithRoles(...) to change
            setup.ServingReplicas(source.Replica(InferenceTask.Logits, torch.ScalarType.Float32, GenerationOptions.Greedy));
            if (join is not null)
            {
                setup.Join(join);
            }
        });
        using var host = builder.Build();
        await host.StartAsync();

        var client = host.Services.GetRequiredService<ReplicaClient>();
        var result = await client.RunAsync(TokenRows.Of(inputIds, null), new JobOptions(MaxBatchSize: 2) { Model = ModelIdentity.Of(source.Name, source.RandomSeed) });

        await host.StopAsync();
        return (torch.Tensor)result.Results!;
    }
}
