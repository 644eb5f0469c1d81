using DistributedInference.Models;
using DistributedInference.Models.Gpt2;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;
using static TorchSharp.torch;

namespace DistributedInference.Host.Inference;

/// <summary>A <c>di infer</c> job checked end to end before any model is loaded: every error surfaces here first.</summary>
public sealed record PreparedJob(
    InferenceTask Task,
    ScalarType DType,
    IReadOnlyList<DeviceName> Devices,
    ResultWriter Writer,
    Gpt2Source Source,
    InferenceInputs Inputs)
{
    public static PreparedJob From(InferOptions options)
    {
        LibTorch.Initialize(options.LibTorch);
        var task = InferenceTasks.Parse(options.Task);
        var dtype = Precision.Parse(options.DType);
        var devices = DeviceName.ParseList(options.Devices);
        if (options.Mode is not ("replica" or "pipeline"))
        {
            throw new InvalidInputException($"unknown mode '{options.Mode}': use replica or pipeline");
        }

        if (options.Mode == "pipeline" && task == InferenceTask.Generate)
        {
            throw new InvalidInputException("pipeline mode runs the logits and classify tasks; generate runs in replica mode");
        }

        if (options.MaxBatchSize <= 0)
        {
            throw new InvalidInputException($"--max-batch-size must be positive, got {options.MaxBatchSize}");
        }

        if (options.MaxNewTokens < 0)
        {
            throw new InvalidInputException($"--max-new-tokens must be >= 0, got {options.MaxNewTokens}");
        }

        if (options.NumChunks is <= 0)
        {
            throw new InvalidInputException($"--num-chunks must be positive, got {options.NumChunks}");
        }

        var writer = ResultWriter.For(options.OutputPath);
        foreach (var device in devices.Distinct())
        {
            device.ToTorch();
        }

        var source = Gpt2Source.Resolve(options.Model, options.Seed);
        if (task == InferenceTask.Classify)
        {
            source.RequireClassifierHead();
        }

        var inputs = InferenceInputs.Read(options, source.Config.VocabSize, GreedySearch.PadToken(source.Config), padLeft: task == InferenceTask.Generate);
        Gpt2Model.CheckInput(source.Config, inputs.InputIds, task == InferenceTask.Generate ? options.MaxNewTokens : 0);
        return new PreparedJob(task, dtype, devices, writer, source, inputs);
    }
}
