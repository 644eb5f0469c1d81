// dotnet run --project samples/ClusterNode -- [MODEL [JOIN_HOST:PORT]]
// A host app that is a node of a DistributedInference cluster (the cluster di node processes form): it offers its
// devices, and its ReplicaClient runs jobs on the devices of every node. Without JOIN it starts a one-node cluster.
// Prints, for each of two rows of token ids, the id its last position's logits rank first.
using DistributedInference.Actors.Hosting;
using DistributedInference.Actors.Replica;
using DistributedInference.Models.Auto;
using DistributedInference.Models.Generation;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using static TorchSharp.torch;

LibTorch.Initialize();
var model = args.Length > 0 ? args[0] : "gpt2-tiny";
var join = args.Length > 1 ? args[1] : null;
using var inputIds = tensor(new long[] { 1, 2, 3, 4, 5, 6, 7, 8 }, [2, 4]);

var source = AutoModelSource.Resolve(model);
var builder = Host.CreateApplicationBuilder();
builder.Logging.AddConsole(console => console.LogToStandardErrorThreshold = LogLevel.Trace);  // logs on stderr, results on stdout
builder.Services.AddDistributedInferenceNode(setup =>
{
    setup.ListenOn("127.0.0.1", 0).OnDevices("cpu");  // roles: device and control by default; WithRoles(...) to change
    setup.ServingReplicas(source.Replica(InferenceTask.Logits, ScalarType.Float32, GenerationOptions.Greedy));
    if (join is not null)
    {
        setup.Join(join);
    }
});
using var host = builder.Build();
await host.StartAsync();

var client = host.Services.GetRequiredService<ReplicaClient>();
var result = await client.RunAsync(TokenRows.Of(inputIds, null), new JobOptions(MaxBatchSize: 2) { Model = ModelIdentity.Of(source.Name, source.RandomSeed) });
using var logits = (Tensor)result.Results!;
Console.WriteLine($"next token ids: {string.Join(" ", logits.select(1, -1).argmax(-1).data<long>().ToArray())}");

await host.StopAsync();
