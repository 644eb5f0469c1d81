// dotnet run --project samples/ReplicaHost -- [MODEL [PROMPT...]]
// A host app that embeds replica mode: two device actors on the CPU, prompts in, one JSON line per completion out, in
// prompt order. By default GPT-2's tiny built-in (random weights, nothing downloaded) on two prompts.
using System.Text.Json;
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
string[] prompts = args.Length > 1 ? args[1..] : ["a dog", "a cat"];

var source = AutoModelSource.Resolve(model);
var builder = Host.CreateApplicationBuilder();
builder.Logging.AddConsole(console => console.LogToStandardErrorThreshold = LogLevel.Trace);  // logs on stderr, results on stdout
builder.Services.AddDistributedInference(setup => setup
    .OnDevices("cpu", "cpu")
    .WithModel(source.Replica(InferenceTask.Generate, ScalarType.Float32, new GenerationOptions(MaxNewTokens: 8))));
using var host = builder.Build();
await host.StartAsync();

var client = host.Services.GetRequiredService<ReplicaClient>();
var result = await client.RunAsync(prompts, new JobOptions(MaxBatchSize: 2) { Model = ModelIdentity.Of(source.Name, source.RandomSeed) });
foreach (var completion in ((object[])result.Results!).Cast<Completion>())
{
    Console.WriteLine(JsonSerializer.Serialize(new { prompt = completion.Prompt, output_ids = completion.OutputIds, completion = completion.Text }));
}

await host.StopAsync();
