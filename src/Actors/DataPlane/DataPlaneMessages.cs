using DistributedInference.Actors.Pipeline;
using DistributedInference.Actors.Replica;

namespace DistributedInference.Actors.DataPlane;

/// <summary>
/// What the data plane carries: results streams only, the tensor-bearing messages (micro-batches, batch and job
/// results, gathered outputs, a job's input fetched from its client) and the outcome messages that must keep their order
/// with them (a batch or job that failed, rows failed, a job accepted). Control messages (devices added or removed, jobs submitted, cancelled or dropped, batches
/// to run, stages to host or connect, queries) travel only over Akka: a frame naming one is refused before its body
/// is read, and <see cref="TensorDataPlane.Tell"/> sends one through Akka.
/// </summary>
public static class DataPlaneMessages
{
    private static readonly HashSet<Type> Types =
    [
        typeof(MicroBatch), typeof(MicroBatchFailed), typeof(OutputGathered),
        typeof(BatchCompleted), typeof(BatchFailed),
        typeof(JobAccepted), typeof(RowsCompleted), typeof(RowsFailed), typeof(JobCompleted), typeof(JobFailed), typeof(JobInput),
    ];

    private static readonly HashSet<string> Manifests = new(StringComparer.Ordinal)
    {
        "micro-batch", "micro-batch-failed", "output-gathered", "batch-completed", "batch-failed", "job-accepted", "rows-completed", "rows-failed", "job-completed", "job-failed", "job-input",
    };

    /// <summary>Whether <paramref name="message"/> may travel on the data plane.</summary>
    public static bool Allowed(object message) => Types.Contains(message.GetType());

    /// <summary>Whether a frame with this serializer manifest may be read.</summary>
    public static bool AllowedManifest(string manifest) => Manifests.Contains(manifest);
}
