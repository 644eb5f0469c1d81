using DistributedInference.Actors.Replica;
using DistributedInference.Models;
using DistributedInference.Models.Gpt2;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;
using static TorchSharp.torch;

namespace DistributedInference.Host.Inference;

/// <summary>
/// <c>di infer --mode replica</c>: validate everything, start one device actor per device (each with its own GPT-2
/// replica), split the rows across them, write the results in input order.
/// </summary>
public static class ReplicaInference
{
    public static async Task Run(InferOptions options, TextWriter stdout, TextWriter stderr, CancellationToken cancellation)
    {
        LibTorch.Initialize(options.LibTorch);
        var task = InferenceTasks.Parse(options.Task);
        var dtype = Precision.Parse(options.DType);
        var devices = DeviceName.ParseList(options.Devices);
        if (options.Mode != "replica")
        {
            throw new InvalidInputException(options.Mode == "pipeline"
                ? "--mode pipeline is not available yet; use --mode replica"
                : $"unknown mode '{options.Mode}': use replica");
        }

        if (options.MaxBatchSize <= 0)
        {
            throw new InvalidInputException($"--max-batch-size must be positive, got {options.MaxBatchSize}");
        }

        if (options.MaxNewTokens < 0)
        {
            throw new InvalidInputException($"--max-new-tokens must be >= 0, got {options.MaxNewTokens}");
        }

        var writer = ResultWriter.For(options.OutputPath);
        foreach (var device in devices.Distinct())
        {
            device.ToTorch();
        }

        var source = Gpt2Source.Resolve(options.Model, options.Seed);
        if (task == InferenceTask.Classify && !source.HasClassifierHead)
        {
            throw new InvalidInputException($"{source.Name}: no classification head (score.weight) in the checkpoint; task classify needs a GPT2ForSequenceClassification folder");
        }

        var padId = source.Config.PadTokenId ?? source.Config.EosTokenId ?? 0;
        var inputs = InferenceInputs.Read(options, source.Config.VocabSize, padId, padLeft: task == InferenceTask.Generate);
        Gpt2Model.CheckInput(source.Config, inputs.InputIds, task == InferenceTask.Generate ? options.MaxNewTokens : 0);

        await using var runtime = await ReplicaRuntime.StartAsync(
            devices, Gpt2Replica.Factory(source, task, dtype, options.MaxNewTokens), cancellation: cancellation);
        var jobOptions = new JobOptions(options.ApplyPadding, options.MaxBatchSize);
        var rows = Gpt2Replica.Rows(inputs.InputIds, inputs.AttentionMask);
        var result = await ProgressBar.Track(
            stderr,
            $"{task.Name()} on {devices.Count} device(s)",
            progress => runtime.Client.RunAsync(rows, jobOptions, progress, cancellation));
        writer.Write(task, inputs, (Tensor)result.Results!, source.Config, stdout);
    }
}
