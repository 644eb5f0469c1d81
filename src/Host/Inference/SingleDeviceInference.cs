using DistributedInference.Models;
using DistributedInference.Models.Gpt2;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;
using static TorchSharp.torch;

namespace DistributedInference.Host.Inference;

/// <summary>Runs a job on one device: validate everything, load the model, run batches, write results.</summary>
public static class SingleDeviceInference
{
    public static Task Run(InferOptions options, TextWriter stdout, TextWriter stderr, CancellationToken cancellation)
    {
        LibTorch.Initialize(options.LibTorch);
        var task = InferenceTasks.Parse(options.Task);
        var dtype = Precision.Parse(options.DType);
        var devices = DeviceName.ParseList(options.Devices);
        if (devices.Count != 1)
        {
            throw new InvalidInputException($"--devices {options.Devices}: this command runs on one device; name exactly one");
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
        var device = devices[0].ToTorch();
        var source = Gpt2Source.Resolve(options.Model, options.Seed);
        if (task == InferenceTask.Classify && !source.HasClassifierHead)
        {
            throw new InvalidInputException($"{source.Name}: no classification head (score.weight) in the checkpoint; task classify needs a GPT2ForSequenceClassification folder");
        }

        var padId = source.Config.PadTokenId ?? source.Config.EosTokenId ?? 0;
        var inputs = InferenceInputs.Read(options, source.Config.VocabSize, padId, padLeft: task == InferenceTask.Generate);
        Gpt2Model.CheckInput(source.Config, inputs.InputIds, task == InferenceTask.Generate ? options.MaxNewTokens : 0);

        using var model = Gpt2TaskModel.Load(source, task, device, dtype, options.MaxNewTokens);
        var results = new List<Tensor>();
        for (long start = 0; start < inputs.Count; start += options.MaxBatchSize)
        {
            cancellation.ThrowIfCancellationRequested();
            var end = Math.Min(inputs.Count, start + options.MaxBatchSize);
            results.Add(model.Run(inputs.InputIds.narrow(0, start, end - start), inputs.AttentionMask?.narrow(0, start, end - start)));
        }

        using var all = Concatenate(results, task, model.PadTokenId);
        writer.Write(task, inputs, all, source.Config, stdout);
        return Task.CompletedTask;
    }

    /// <summary>Joins batch results; generated rows of batches that stopped early are right-padded with the pad id.</summary>
    internal static Tensor Concatenate(IReadOnlyList<Tensor> results, InferenceTask task, long padId)
    {
        if (task != InferenceTask.Generate)
        {
            return cat(results.ToArray(), 0);
        }

        var width = results.Max(r => r.shape[1]);
        return cat(results.Select(r => r.shape[1] == width ? r : nn.functional.pad(r, [0, width - r.shape[1]], value: padId)).ToArray(), 0);
    }
}
