using DistributedInference.Actors.Replica;
using DistributedInference.Models.Tasks;
using static TorchSharp.torch;

namespace DistributedInference.Host.Inference;

/// <summary>
/// <c>di infer --mode replica</c>: one device actor per device, each with its own GPT-2 replica; the rows are split
/// across them and the results written in input order.
/// </summary>
public static class ReplicaInference
{
    public static async Task Run(PreparedJob job, InferOptions options, TextWriter stdout, TextWriter stderr, CancellationToken cancellation)
    {
        await using var runtime = await ReplicaRuntime.StartAsync(
            job.Devices, FaultInjection.Apply(job.Source.Replica(job.Task, job.DType, job.Generation)), cancellation: cancellation);
        var rows = job.Rows();
        var result = await ProgressBar.Track(
            stderr,
            $"{job.Task.Name()} on {job.Devices.Count} device(s)",
            progress => runtime.Client.RunAsync(rows, new JobOptions(options.ApplyPadding, options.MaxBatchSize), progress, cancellation));
        job.Complete(options, (Tensor)result.Results!, "replica", job.Devices.Count, null, stdout, stderr, result.FailedRows);
    }
}
