// A fresh app that uses the packed DistributedInference packages: a replica job on two CPU replicas, checked against
// the fixture's logits. Arguments: the gpt2-tiny fixture folder.
using DistributedInference.Actors.Hosting;
using DistributedInference.Actors.Replica;
using DistributedInference.Models.Auto;
using DistributedInference.Models.Generation;
using DistributedInference.Models.Loading;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using TorchSharp;

LibTorch.Initialize();
var fixture = args[0];
var source = AutoModelSource.Resolve(Path.Combine(fixture, "lm"));
var builder = Host.CreateApplicationBuilder();
builder.Logging.AddConsole(console => console.LogToStandardErrorThreshold = LogLevel.Trace);  // logs on stderr, results on stdout
builder.Services.AddDistributedInference(setup => setup
    .OnDevices("cpu", "cpu")
    .WithModel(source.Replica(InferenceTask.Logits, torch.ScalarType.Float32, GenerationOptions.Greedy)));
using var host = builder.Build();
await host.StartAsync();
var expected = SafeTensorsFile.Open(Path.Combine(fixture, "expected.safetensors"));
var client = host.Services.GetRequiredService<ReplicaClient>();
var result = await client.RunAsync(TokenRows.Of(expected.Read("input_ids"), null), new JobOptions(MaxBatchSize: 1) { Model = ModelIdentity.Of(source.Name, source.RandomSeed) });
var diff = ((torch.Tensor)result.Results!).sub(expected.Read("lm_logits")).abs().max().ToDouble();
await host.StopAsync();
Console.WriteLine($"replica job on {result.Statistics.Devices.Count} devices: max |diff| {diff:E2}");
return diff <= 1e-4 ? 0 : 1;
