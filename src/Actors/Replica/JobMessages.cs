using Akka.Actor;
using DistributedInference.Actors.Kernel.Rows;

namespace DistributedInference.Actors.Replica;

/// <summary>How a replica job is split: accelerate's <c>apply_padding</c>, and rows per forward pass.</summary>
public sealed record JobOptions(bool ApplyPadding = false, int MaxBatchSize = 8)
{
    /// <summary>How long one batch may take before it is re-sent to another device.</summary>
    public TimeSpan BatchTimeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// Attempts per batch (a device that fails, stops or times out costs one) before the batch is split in two to isolate
    /// the rows at fault (<see cref="RowsFailed"/>); hocon <c>distributed-inference.max-attempts</c>.
    /// </summary>
    public int MaxAttempts { get; init; } = 3;

    /// <summary>
    /// The model the job is for, as <see cref="DistributedInference.Models.Tasks.ModelIdentity.Of"/> names it (a folder
    /// by its name, a built-in by its name and seed): the job runs only on devices whose replica description starts
    /// with it (<see cref="DistributedInference.Models.Tasks.ModelIdentity.Serves"/>), and fails as an input error
    /// when none does. Null: any device.
    /// </summary>
    public string? Model { get; init; }
}

/// <summary>
/// Run a job: <see cref="Input"/> is a list, a tensor or a dictionary of them, split by rows; the job owns it
/// (<see cref="RowPayload"/>: a sender that keeps its input sends <see cref="RowPayload.Handles"/>). Progress and results go
/// to <see cref="ReplyTo"/>: <see cref="JobAccepted"/>, <see cref="RowsCompleted"/> as batches finish (with their
/// results when <see cref="StreamResults"/>; the receiver then owns them), then <see cref="JobCompleted"/> or
/// <see cref="JobFailed"/>.
/// </summary>
/// With <see cref="InputOnRequest"/>, <see cref="Input"/> is a placeholder: the input stays with the client until the
/// job's coordinator asks for it (<see cref="FetchJobInput"/>) and it comes by the data plane (<see cref="JobInput"/>),
/// so user data never rides in this control message (Akka's frame limit would drop a large one).
public sealed record SubmitJob(string JobId, RowPayload Input, JobOptions Options, IActorRef ReplyTo, bool StreamResults = true, string? ReplyDataPlane = null, bool InputOnRequest = false) : ICarriesRows
{
    RowPayload? ICarriesRows.Payload => Input;
}

/// <summary>
/// From a job's coordinator to the client of a <see cref="SubmitJob.InputOnRequest"/> submission: send the input as
/// <see cref="JobInput"/> to <see cref="ReplyTo"/> on the node whose data plane is <see cref="ReplyDataPlane"/>.
/// </summary>
public sealed record FetchJobInput(string JobId, IActorRef ReplyTo, string? ReplyDataPlane)
{
    /// <summary>Why a job whose input did not come within <paramref name="timeout"/> (the submit timeout) fails.</summary>
    public static string NotSentWithin(TimeSpan timeout) =>
        $"the client did not send the job's input within {timeout.TotalSeconds:F0} s (distributed-inference.submit-timeout)";
}

/// <summary>
/// A job's input, sent by its client on the data plane when the coordinator asks: the coordinator owns it (the client
/// sends new handles of its input each time it is asked, <see cref="RowPayload.Handles"/>).
/// </summary>
public sealed record JobInput(string JobId, RowPayload Input) : ICarriesRows
{
    RowPayload? ICarriesRows.Payload => Input;
}

/// <summary>Stop a job; its queued batches are dropped and <see cref="JobFailed"/> is sent.</summary>
public sealed record CancelJob(string JobId);

public sealed record JobAccepted(string JobId, int Rows, int Batches, int Devices);

/// <summary>
/// Rows [Start, Start + Count) of the input are done (in the order batches finish), with their results when the job
/// streams them: the client's own copy, which it owns and may dispose at once (the job keeps its own).
/// </summary>
public sealed record RowsCompleted(string JobId, int Start, int Count, RowPayload? Results, int RowsDone, int RowsTotal) : ICarriesRows
{
    RowPayload? ICarriesRows.Payload => Results;
}

/// <summary>
/// Every result in input order, padding dropped (null for an empty input), with where the time went. Rows that failed
/// on their own (<see cref="FailedRows"/>) hold a blank in <see cref="Results"/>: zeros in a tensor, null in a list.
/// The client owns <see cref="Results"/> (the job keeps nothing of it).
/// </summary>
public sealed record JobCompleted(string JobId, RowPayload? Results, JobStatistics Statistics) : ICarriesRows
{
    RowPayload? ICarriesRows.Payload => Results;

    /// <summary>The rows that failed alone (see <see cref="RowsFailed"/>), by index; empty when every row was answered.</summary>
    public IReadOnlyList<RowFailure> FailedRows { get; init; } = [];
}

/// <summary>
/// Input rows that failed on their own: their batch failed on <see cref="JobOptions.MaxAttempts"/> attempts, and so did
/// every smaller part of it down to these rows. Every other row is still answered. Sent once per row, at most.
/// </summary>
public sealed record RowsFailed(string JobId, IReadOnlyList<int> Rows, string Error, int RowsDone, int RowsTotal);

/// <summary>One input row that failed, with its error.</summary>
public sealed record RowFailure(int Index, string Error);

/// <summary>The job ended without results. <see cref="InputError"/>: the input itself is at fault (the same job would fail again).</summary>
public sealed record JobFailed(string JobId, string Reason, bool InputError = false);

/// <summary>Wall time of a job, and per device the batches it ran and its busy time.</summary>
public sealed record JobStatistics(TimeSpan Elapsed, IReadOnlyDictionary<string, DeviceShare> Devices, int ResentBatches);

public sealed record DeviceShare(int Batches, int Rows, TimeSpan Busy);

/// <summary>
/// Tell a splitter about a device actor (it watches it and stops using it when it stops). <see cref="DataPlane"/>: the
/// data-plane endpoint of the device's node (from its <see cref="DeviceList"/>), where jobs send its batches when it is on
/// another node; null: by Akka.
/// </summary>
public sealed record AddDevice(IActorRef Device, string? DataPlane = null);

/// <summary>
/// Stop using a device (its node is unreachable, say): running jobs re-send its batches at once instead of waiting
/// for the device to be declared dead. A later <see cref="AddDevice"/> brings it back.
/// </summary>
public sealed record RemoveDevice(IActorRef Device);

/// <summary>Asks a splitter for the devices it uses: answered with <see cref="DeviceList"/>.</summary>
public sealed record GetDevices
{
    public static readonly GetDevices Instance = new();
}

/// <summary>
/// Device actors. From a node's <see cref="Cluster.DeviceManager"/>, <see cref="DataPlane"/> is that node's data-plane
/// endpoint (null where it has none): batches for those devices go there.
/// </summary>
public sealed record DeviceList(IReadOnlyList<IActorRef> Devices, string? DataPlane = null);
