// dotnet run --project samples/ReplicaHost -- [MODEL [PROMPT...]]
// A host app that embeds replica mode; by default GPT-2's tiny built-in (random weights) on two prompts.
using DistributedInference.Models.Runtime;
using DistributedInference.Samples.ReplicaHost;

LibTorch.Initialize();
var model = args.Length > 0 ? args[0] : "gpt2-tiny";
string[] prompts = args.Length > 1 ? args[1..] : ["a dog", "a cat"];
foreach (var completion in await ReplicaHostSample.RunAsync(model, prompts))
{
    Console.WriteLine($"{completion.Prompt} -> {completion.Text}");
}
