using DistributedInference.Actors.Pipeline;
using DistributedInference.Actors.Replica;

namespace DistributedInference.Actors.Kernel.Transport;

/// <summary>
/// What the data plane carries: results streams only, the tensor-bearing messages (micro-batches, batch and job
/// results, gathered outputs, a job's input fetched from its client) and the outcome messages that must keep their order
/// with them (a batch or job that failed, rows failed, a job accepted), and a batch to run on a device of another node
/// (<see cref="RunBatch"/>: its rows are user data, which never ride in a control message, and a batch can outgrow
/// Akka's frame). Control messages (devices added or removed, jobs submitted, cancelled or dropped, stages to host or
/// connect, queries) travel only over Akka: a frame naming one is refused before its body is read, and
/// <see cref="TensorDataPlane.Tell"/> sends one through Akka. The one reply address a carried message names
/// (<see cref="RunBatch.ReplyDataPlane"/>) is replaced on arrival by the authenticated peer's own endpoint
/// (<see cref="FromPeer"/>): a frame cannot send an answer anywhere else.
/// </summary>
public static class DataPlaneMessages
{
    private static readonly HashSet<Type> Types =
    [
        typeof(MicroBatch), typeof(MicroBatchFailed), typeof(OutputGathered),
        typeof(BatchCompleted), typeof(BatchFailed),
        typeof(JobAccepted), typeof(RowsCompleted), typeof(RowsFailed), typeof(JobCompleted), typeof(JobFailed), typeof(JobInput),
        typeof(RunBatch),
    ];

    private static readonly HashSet<string> Manifests = new(StringComparer.Ordinal)
    {
        "micro-batch", "micro-batch-failed", "output-gathered", "batch-completed", "batch-failed", "job-accepted", "rows-completed", "rows-failed", "job-completed", "job-failed", "job-input",
        "run-batch",
    };

    /// <summary>Whether <paramref name="message"/> may travel on the data plane.</summary>
    public static bool Allowed(object message) => Types.Contains(message.GetType());

    /// <summary>Whether a frame with this serializer manifest may be read.</summary>
    public static bool AllowedManifest(string manifest) => Manifests.Contains(manifest);

    /// <summary>
    /// <paramref name="message"/> as read from a frame of the peer that proved, in the handshake, that its data plane is
    /// at <paramref name="peerEndpoint"/>: a reply address in it is that endpoint, whatever the frame said.
    /// </summary>
    public static object FromPeer(object message, string peerEndpoint) => message switch
    {
        RunBatch batch => batch with { ReplyDataPlane = peerEndpoint },
        _ => message,
    };
}
