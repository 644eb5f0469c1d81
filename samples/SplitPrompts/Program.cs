// dotnet build samples/SplitPrompts, then
// di launch --num-processes 2 -- dotnet run --no-build --project samples/SplitPrompts [-- MODEL [OUTPUT_FOLDER]]
// Accelerate's distributed inference example in C#: every process loads the model on its device, generates for its
// share of the prompts, saves result_{index}.txt, and the main process prints every completion in prompt order.
// By default GPT-2's tiny built-in (random weights, nothing downloaded); results go to out/ (git ignores it).
using System.Text.Json;
using DistributedInference.Actors.Processes;
using DistributedInference.Models.Auto;
using DistributedInference.Models.Generation;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;
using static TorchSharp.torch;

LibTorch.Initialize();
var model = args.Length > 0 ? args[0] : "gpt2-tiny";
var output = args.Length > 1 ? args[1] : "out";
Directory.CreateDirectory(output);

await using var state = await ProcessState.FromEnvironmentAsync();
using var generator = AutoModelSource.Resolve(model).Replica(InferenceTask.Generate, ScalarType.Float32, new GenerationOptions(MaxNewTokens: 8))(state.Device);

string[] prompts = ["a dog", "a cat", "a chicken"];
var mine = state.SplitBetweenProcesses(prompts, applyPadding: true);
var completions = ((object[])generator.Run(mine.ToArray())).Cast<Completion>().Select(c => c.Text).ToList();
File.WriteAllLines(Path.Combine(output, $"result_{state.ProcessIndex}.txt"), completions.Select(c => JsonSerializer.Serialize(c)));

var all = state.Gather(completions, prompts.Length, applyPadding: true);
for (var i = 0; i < prompts.Length; i++)
{
    state.Print($"{prompts[i]} -> {JsonSerializer.Serialize(all[i])}");
}
