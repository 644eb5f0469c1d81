using System.CommandLine;
using DistributedInference.Host.Inference;

namespace DistributedInference.Host.CommandLine;

/// <summary><c>di infer</c>: run a model over inputs and write one result per input, in input order.</summary>
public static class InferCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Hugging Face GPT-2 folder, or a built-in: gpt2, gpt2-medium, gpt2-large, gpt2-xl, gpt2-tiny (random weights from --seed)", DefaultValueFactory = _ => "gpt2" };
        var task = new Option<string>("--task") { Description = "logits | classify | generate", DefaultValueFactory = _ => "generate" };
        var inputIds = new Option<string?>("--input-ids") { Description = "safetensors file with input_ids int64 [B,T] (optional attention_mask)" };
        var prompts = new Option<string[]>("--prompts") { Description = "prompts, tokenized with GPT-2's tokenizer", AllowMultipleArgumentsPerToken = true, Arity = ArgumentArity.OneOrMore };
        var promptsFile = new Option<string?>("--prompts-file") { Description = "text file, one prompt a line" };
        var output = new Option<string?>("--output") { Description = "F.safetensors or F.jsonl; JSON lines on stdout when left out" };
        var mode = new Option<string>("--mode") { Description = "replica: every device holds the whole model and gets a share of the rows; pipeline: the model is cut into one stage per device", DefaultValueFactory = _ => "replica" };
        var splitPoints = new Option<string>("--split-points") { Description = "pipeline: auto (balanced by parameter bytes), compute (balanced by estimated FLOPs per token), or the layers that start stages 2, 3, ...: h.1,h.3", DefaultValueFactory = _ => "auto" };
        var numChunks = new Option<int?>("--num-chunks") { Description = "pipeline: micro-batches per call (default: one per stage)" };
        var gatherOutput = new Option<bool>("--gather-output") { Description = "pipeline: hand the output to every stage, not only the last" };
        var devices = new Option<string>("--devices") { Description = "comma-separated devices, one device actor each: cpu,cpu | cuda:0,cuda:1", DefaultValueFactory = _ => "cpu" };
        var applyPadding = new Option<bool>("--apply-padding") { Description = "pad every device's share to the same size with the last row (as accelerate); results still come back without the padding" };
        var dtype = new Option<string>("--dtype") { Description = "fp32 | fp16 | bf16", DefaultValueFactory = _ => "fp32" };
        var maxBatchSize = new Option<int>("--max-batch-size") { Description = "replica: rows per forward pass on a device; pipeline: rows per call", DefaultValueFactory = _ => 8 };
        var maxNewTokens = new Option<int>("--max-new-tokens") { Description = "tokens to generate per input (task generate)", DefaultValueFactory = _ => 20 };
        var seed = new Option<long>("--seed") { Description = "seed of a built-in model's random weights", DefaultValueFactory = _ => 0 };
        var libtorch = new Option<string?>("--libtorch") { Description = $"folder holding libtorch (a PyTorch install's torch/lib, CUDA included); also ${Models.Runtime.LibTorch.FolderVariable}" };

        var command = new Command("infer", "Run a model over inputs; results come back in input order.")
        {
            model, task, inputIds, prompts, promptsFile, output, mode, devices, applyPadding, splitPoints, numChunks, gatherOutput, dtype, maxBatchSize,
            maxNewTokens, seed, libtorch,
        };

        command.SetAction((result, cancellation) => UserErrors.Run(
            async () =>
            {
                var options = new InferOptions(
                    Model: result.GetValue(model)!,
                    Task: result.GetValue(task)!,
                    InputIdsPath: result.GetValue(inputIds),
                    Prompts: result.GetValue(prompts),
                    PromptsFile: result.GetValue(promptsFile),
                    OutputPath: result.GetValue(output),
                    Mode: result.GetValue(mode)!,
                    Devices: result.GetValue(devices)!,
                    ApplyPadding: result.GetValue(applyPadding),
                    DType: result.GetValue(dtype)!,
                    MaxBatchSize: result.GetValue(maxBatchSize),
                    MaxNewTokens: result.GetValue(maxNewTokens),
                    Seed: result.GetValue(seed),
                    LibTorch: result.GetValue(libtorch),
                    SplitPoints: result.GetValue(splitPoints)!,
                    NumChunks: result.GetValue(numChunks),
                    GatherOutput: result.GetValue(gatherOutput));
                var job = PreparedJob.From(options);
                var (stdout, stderr) = (result.InvocationConfiguration.Output, result.InvocationConfiguration.Error);
                await (options.Mode == "pipeline"
                    ? PipelineInference.Run(job, options, stdout, stderr, cancellation)
                    : ReplicaInference.Run(job, options, stdout, stderr, cancellation));
                return 0;
            },
            result.InvocationConfiguration.Error));
        return command;
    }
}
