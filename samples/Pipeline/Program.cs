// dotnet run --project samples/Pipeline -- [MODEL [INPUT.safetensors OUTPUT.safetensors]]
// Pipeline mode in one process: a model's staged view cut over three CPU stages, rows streamed through them. The rows
// are the input file's input_ids (and attention_mask), else two rows of token ids; the logits go to OUTPUT when given.
// By default GPT-2's tiny built-in (random weights, nothing downloaded).
using DistributedInference.Actors.Pipeline;
using DistributedInference.Models.Auto;
using DistributedInference.Models.Loading;
using DistributedInference.Models.Partitioning;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;
using static TorchSharp.torch;

LibTorch.Initialize();
var model = args.Length > 0 ? args[0] : "gpt2-tiny";
var input = args.Length > 2 ? SafeTensorsFile.ReadAll(args[1]) : new() { ["input_ids"] = tensor(new long[] { 1, 2, 3, 4, 5, 6, 7, 8 }, [2, 4]) };
var inputIds = input["input_ids"];
var attentionMask = input.GetValueOrDefault("attention_mask");

var source = AutoModelSource.Resolve(model);
var staged = source.LoadStaged(InferenceTask.Logits);
using var owned = staged as IDisposable;
var plan = Partitioner.Plan(staged.Layers, [DeviceName.Cpu, DeviceName.Cpu, DeviceName.Cpu], "auto");
await using var pipeline = await PipelineRuntime.StartAsync(staged, plan, ScalarType.Float32);

var completed = await pipeline.RunAsync(TokenRows.Of(inputIds, attentionMask), numChunks: 2);
var metrics = await pipeline.MetricsAsync();
using var logits = (Tensor)completed.Output;
Console.WriteLine($"logits [{string.Join(", ", logits.shape)}] through {plan.Stages.Count} stages, bubble fraction {metrics.Total.BubbleFraction:F3}");
if (args.Length > 2)
{
    SafeTensorsFile.Write(args[2], new Dictionary<string, Tensor> { ["logits"] = logits });
}
