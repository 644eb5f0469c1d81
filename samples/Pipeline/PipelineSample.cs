using DistributedInference.Actors.Pipeline;
using DistributedInference.Models.Auto;
using DistributedInference.Models.Partitioning;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;
using TorchSharp;

namespace DistributedInference.Samples.Pipeline;

/// <summary>Pipeline mode in one process: a model's staged view cut over three CPU stages, rows streamed through them.</summary>
public static class PipelineSample
{
    /// <summary>The logits of <paramref name="inputIds"/> through a three-stage pipeline of <paramref name="model"/>.</summary>
    /// <param name="model">A Hugging Face folder or a built-in name of a family with a staged view for logits.</param>
    /// <param name="inputIds">[B, T] int64 token ids.</param>
    /// <param name="attentionMask">[B, T] int64, 1 for real tokens and 0 for padding; null: no padding.</param>
    /// <returns>The logits [B, T, vocab] float32 (owned by the caller), and the pipeline's bubble fraction.</returns>
    public static async Task<(torch.Tensor Logits, double BubbleFraction)> RunAsync(string model, torch.Tensor inputIds, torch.Tensor? attentionMask)
    {
        var source = AutoModelSource.Resolve(model);
        var staged = source.LoadStaged(InferenceTask.Logits);
        using var owned = staged as IDisposable;
        var plan = Partitioner.Plan(staged.Layers, [DeviceName.Cpu, DeviceName.Cpu, DeviceName.Cpu], "auto");
        await using var pipeline = await PipelineRuntime.StartAsync(staged, plan, torch.ScalarType.Float32);

        var completed = await pipeline.RunAsync(TokenRows.Of(inputIds, attentionMask), numChunks: 2);
        var metrics = await pipeline.MetricsAsync();
        return ((torch.Tensor)completed.Output, metrics.Total.BubbleFraction);
    }
}
