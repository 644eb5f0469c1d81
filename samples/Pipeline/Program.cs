// dotnet run --project samples/Pipeline -- [MODEL [PROMPT...]]
// Pipeline mode in one process; by default GPT-2's tiny built-in (random weights) on two rows of token ids.
using DistributedInference.Models.Auto;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;
using DistributedInference.Models.Tokenization;
using DistributedInference.Samples.Pipeline;
using TorchSharp;

LibTorch.Initialize();
var model = args.Length > 0 ? args[0] : "gpt2-tiny";
var batch = args.Length > 1
    ? AutoModelSource.Resolve(model).Tokenize(args[1..], InferenceTask.Logits)
    : new TokenBatch(torch.tensor(new long[] { 1, 2, 3, 4, 5, 6, 7, 8 }, [2, 4]), torch.ones(2, 4, torch.ScalarType.Int64));
var (logits, bubble) = await PipelineSample.RunAsync(model, batch.InputIds, batch.AttentionMask);
Console.WriteLine($"logits [{string.Join(", ", logits.shape)}], bubble fraction {bubble:F3}");
