using DistributedInference.Actors.Kernel.Rows;

namespace DistributedInference.Actors.Replica;

/// <summary>
/// Run a model over a slice of a job's rows; the device answers <see cref="BatchCompleted"/> or <see cref="BatchFailed"/>,
/// through the data plane at <see cref="ReplyDataPlane"/> when the job is on another node that has one. A job sends it to
/// a device on another node by the data plane (its rows are user data); one that arrives there has
/// <see cref="ReplyDataPlane"/> set by the receiving node to the authenticated sender's endpoint, never taken from the frame.
/// Ownership (<see cref="RowPayload"/>): the device owns <see cref="Rows"/> and disposes it once the batch ran or was
/// dropped; the job owns <see cref="BatchCompleted.Results"/>.
/// </summary>
public sealed record RunBatch(string JobId, int BatchIndex, RowPayload Rows, string? ReplyDataPlane = null) : ICarriesRows
{
    RowPayload? ICarriesRows.Payload => Rows;
}

/// <summary>A batch's results, one row per row sent, copied off the device (the job owns them).</summary>
public sealed record BatchCompleted(string JobId, int BatchIndex, RowPayload Results, TimeSpan Busy) : ICarriesRows
{
    RowPayload? ICarriesRows.Payload => Results;
}

/// <summary>
/// A batch the device could not run. <see cref="Retryable"/> is false when the input itself is at fault (another
/// device would fail the same way).
/// </summary>
public sealed record BatchFailed(string JobId, int BatchIndex, string Reason, bool Retryable);

/// <summary>Forget the batches of a job that is over (finished elsewhere, failed or cancelled) that are still queued.</summary>
public sealed record DropJob(string JobId);

/// <summary>Asks a device for its <see cref="DeviceStatus"/>.</summary>
public sealed record GetDeviceStatus
{
    public static readonly GetDeviceStatus Instance = new();
}

/// <summary>What a device reports about itself.</summary>
public sealed record DeviceStatus(string Device, string Model, int QueueLength, TimeSpan BusyTime, long CompletedBatches);

/// <summary>Sent once a device actor has its model loaded (to the ready-to actor given at creation).</summary>
public sealed record DeviceReady(string Device, string Model);

/// <summary>Sent when a device actor could not load its model; the actor then stops.</summary>
public sealed record DeviceLoadFailed(string Device, string Reason, bool InputError);
