// A host app that embeds DistributedInference: replica mode on two device actors, GPT-2 generation.
using DistributedInference.Actors.Hosting;
using DistributedInference.Actors.Replica;
using DistributedInference.Models.Gpt2;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;
using DistributedInference.Models.Tokenization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using TorchSharp;

LibTorch.Initialize();
var source = Gpt2Source.Resolve(args.Length > 0 ? args[0] : "gpt2-tiny");

var builder = Host.CreateApplicationBuilder(args);
builder.Services.AddDistributedInference(setup => setup
    .OnDevices("cpu", "cpu")
    .WithModel(Gpt2Replica.Factory(source, InferenceTask.Generate, torch.ScalarType.Float32, maxNewTokens: 8)));
using var host = builder.Build();
await host.StartAsync();

string[] prompts = ["a dog", "a cat", "a chicken"];
var batch = TokenBatch.Pad(prompts.Select(p => Gpt2Tokenizer.Instance.Encode(p)).ToList(), padId: Gpt2Tokenizer.EndOfText, padLeft: true);
var client = host.Services.GetRequiredService<ReplicaClient>();
var result = await client.RunAsync(Gpt2Replica.Rows(batch.InputIds, batch.AttentionMask), new JobOptions(MaxBatchSize: 2));

var tokens = (torch.Tensor)result.Results!;
var promptLength = batch.InputIds.shape[1];
for (var i = 0; i < prompts.Length; i++)
{
    var generated = tokens[i].data<long>().Skip((int)promptLength);
    Console.WriteLine($"{prompts[i]} -> {Gpt2Tokenizer.Instance.Decode(generated)}");
}

Console.WriteLine($"{result.Statistics.Devices.Count} devices, {result.Statistics.Elapsed.TotalMilliseconds:F0} ms");
await host.StopAsync();
