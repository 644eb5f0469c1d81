using Akka.Actor;
using DistributedInference.Actors.Kernel.Rows;
using DistributedInference.Actors.Kernel.Wire;
using DistributedInference.Models.Generation;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;

namespace DistributedInference.Actors.Replica;

/// <summary>
/// Replica mode's wire format: every message of the job and device protocols (below, in this file) with its manifest,
/// writer and reader. Bulk messages (<see cref="IBulkMessage"/>: rows, and the outcomes that keep their order with them)
/// may take the data plane; the rest travel over Akka. No message names a network endpoint: replies go where the
/// <see cref="Kernel.Transport.Transport"/> finds their target.
/// </summary>
public sealed class ReplicaProtocol : WireProtocol
{
    public override void Register(WireRegistry registry) => registry
        // Devices.
        .Add<RunBatch>("run-batch", (w, m) => { w.String(m.JobId); w.Int(m.BatchIndex); w.Rows(m.Rows); w.String(m.TraceParent ?? string.Empty); }, r => new RunBatch(r.String(), r.Int(), r.Rows(), NullIfEmpty(r.String())))
        .Add<BatchCompleted>("batch-completed", (w, m) => { w.String(m.JobId); w.Int(m.BatchIndex); w.Rows(m.Results); w.Time(m.Busy); }, r => new BatchCompleted(r.String(), r.Int(), r.Rows(), r.Time()))
        .Add<BatchFailed>("batch-failed", (w, m) => { w.String(m.JobId); w.Int(m.BatchIndex); w.String(m.Reason); w.Bool(m.Retryable); }, r => new BatchFailed(r.String(), r.Int(), r.String(), r.Bool()))
        .Add<DropJob>("drop-job", (w, m) => w.String(m.JobId), r => new DropJob(r.String()))
        .Add("get-device-status", GetDeviceStatus.Instance)
        .Add<DeviceStatus>("device-status", (w, m) => { w.String(m.Device); Optional(w, m.Spec, Spec); w.String(m.Description); w.Int(m.QueueLength); w.Time(m.BusyTime); w.Long(m.CompletedBatches); }, r => new DeviceStatus(r.String(), Optional(r, Spec), r.String(), r.Int(), r.Time(), r.Long()))
        .Add<DeviceReady>("device-ready", (w, m) => { w.String(m.Device); w.String(m.Description); }, r => new DeviceReady(r.String(), r.String()))
        .Add<DeviceLoadFailed>("device-load-failed", (w, m) => { w.String(m.Device); w.String(m.Reason); w.Bool(m.InputError); }, r => new DeviceLoadFailed(r.String(), r.String(), r.Bool()))

        // Jobs.
        .Add<SubmitJob>("submit-job", (w, m) => { w.String(m.JobId); w.Rows(m.Input); Options(w, m.Options); w.Ref(m.ReplyTo); w.Bool(m.StreamResults); w.Bool(m.InputOnRequest); w.String(m.TraceParent ?? string.Empty); }, r => new SubmitJob(r.String(), r.Rows(), Options(r), r.Ref(), r.Bool(), r.Bool(), NullIfEmpty(r.String())))
        .Add<FetchJobInput>("fetch-job-input", (w, m) => { w.String(m.JobId); w.Ref(m.ReplyTo); }, r => new FetchJobInput(r.String(), r.Ref()))
        .Add<JobInput>("job-input", (w, m) => { w.String(m.JobId); w.Rows(m.Input); }, r => new JobInput(r.String(), r.Rows()))
        .Add<CancelJob>("cancel-job", (w, m) => w.String(m.JobId), r => new CancelJob(r.String()))
        .Add<JobAccepted>("job-accepted", (w, m) => { w.String(m.JobId); w.Int(m.Rows); w.Int(m.Batches); w.Int(m.Devices); }, r => new JobAccepted(r.String(), r.Int(), r.Int(), r.Int()))
        .Add<RowsCompleted>("rows-completed", (w, m) => { w.String(m.JobId); w.Int(m.Start); w.Int(m.Count); w.Rows(m.Results); w.Int(m.RowsDone); w.Int(m.RowsTotal); }, r => new RowsCompleted(r.String(), r.Int(), r.Int(), r.OptionalRows(), r.Int(), r.Int()))
        .Add<JobCompleted>("job-completed", (w, m) => { w.String(m.JobId); w.Rows(m.Results); Statistics(w, m.Statistics); w.Many(m.FailedRows, Failure); }, r => new JobCompleted(r.String(), r.OptionalRows(), Statistics(r)) { FailedRows = r.Many(Failure) })
        .Add<RowsFailed>("rows-failed", (w, m) => { w.String(m.JobId); w.Many(m.Rows, (w, row) => w.Int(row)); w.String(m.Error); w.Int(m.RowsDone); w.Int(m.RowsTotal); }, r => new RowsFailed(r.String(), r.Many(r => r.Int()), r.String(), r.Int(), r.Int()))
        .Add<JobFailed>("job-failed", (w, m) => { w.String(m.JobId); w.String(m.Reason); w.Bool(m.InputError); }, r => new JobFailed(r.String(), r.String(), r.Bool()))

        // Splitters.
        .Add("get-devices", GetDevices.Instance)
        .Add<DeviceList>("device-list", (w, m) => w.Many(m.Devices, (w, d) => w.Ref(d)), r => new DeviceList(r.Many(r => r.Ref())))
        .Add<AddDevice>("add-device", (w, m) => w.Ref(m.Device), r => new AddDevice(r.Ref()))
        .Add<RemoveDevice>("remove-device", (w, m) => w.Ref(m.Device), r => new RemoveDevice(r.Ref()));

    private static string? NullIfEmpty(string value) => value.Length == 0 ? null : value;

    private static void Options(WireWriter writer, JobOptions options)
    {
        writer.Bool(options.ApplyPadding);
        writer.Int(options.MaxBatchSize);
        writer.Time(options.BatchTimeout);
        writer.Int(options.MaxAttempts);
        Optional(writer, options.Model, Identity);
    }

    private static JobOptions Options(WireReader reader) =>
        new(reader.Bool(), reader.Int()) { BatchTimeout = reader.Time(), MaxAttempts = reader.Int(), Model = Optional(reader, Identity) };

    /// <summary>A model's identity: its name and weights digest (the cluster's stage messages use it too).</summary>
    internal static void Identity(WireWriter writer, ModelIdentity identity)
    {
        writer.String(identity.Name);
        writer.String(identity.WeightsDigest);
    }

    internal static ModelIdentity Identity(WireReader reader) => new(reader.String(), reader.String());

    private static void Spec(WireWriter writer, ReplicaSpec spec)
    {
        Identity(writer, spec.Model);
        writer.Enum(spec.Task);
        writer.Enum(spec.Precision);
        Optional(writer, spec.Generation, (w, g) => { w.Int(g.MaxNewTokens); w.Bool(g.DoSample); w.Double(g.Temperature); w.Int(g.TopK); w.Double(g.TopP); w.Long(g.Seed); });
    }

    private static ReplicaSpec Spec(WireReader reader) =>
        new(Identity(reader), reader.Enum<InferenceTask>(), reader.Enum<Precision>(), Optional(reader, r => new GenerationOptions(r.Int(), r.Bool(), r.Double(), r.Int(), r.Double(), r.Long())));

    private static void Optional<T>(WireWriter writer, T? value, Action<WireWriter, T> write)
        where T : class
    {
        writer.Bool(value is not null);
        if (value is not null)
        {
            write(writer, value);
        }
    }

    private static T? Optional<T>(WireReader reader, Func<WireReader, T> read)
        where T : class => reader.Bool() ? read(reader) : null;

    private static void Failure(WireWriter writer, RowFailure failure)
    {
        writer.Int(failure.Index);
        writer.String(failure.Error);
    }

    private static RowFailure Failure(WireReader reader) => new(reader.Int(), reader.String());

    private static void Statistics(WireWriter writer, JobStatistics statistics)
    {
        writer.Time(statistics.Elapsed);
        writer.Many(statistics.Devices.ToList(), (w, pair) => { w.String(pair.Key); w.Int(pair.Value.Batches); w.Int(pair.Value.Rows); w.Time(pair.Value.Busy); });
        writer.Int(statistics.ResentBatches);
    }

    private static JobStatistics Statistics(WireReader reader)
    {
        var elapsed = reader.Time();
        var devices = reader.Many(r => (Name: r.String(), Share: new DeviceShare(r.Int(), r.Int(), r.Time())));
        return new JobStatistics(elapsed, devices.ToDictionary(d => d.Name, d => d.Share, StringComparer.Ordinal), reader.Int());
    }
}

/// <summary>
/// Run a job: <see cref="Input"/> is a list, a tensor or a dictionary of them, split by rows; the job owns it
/// (<see cref="RowBatch"/>: a sender that keeps its input sends <see cref="RowBatch.Handles"/>). Progress and results go
/// to <see cref="ReplyTo"/>: <see cref="JobAccepted"/>, <see cref="RowsCompleted"/> as batches finish (with their
/// results when <see cref="StreamResults"/>; the receiver then owns them), then <see cref="JobCompleted"/> or
/// <see cref="JobFailed"/>. With <see cref="InputOnRequest"/>, <see cref="Input"/> is a placeholder: the input stays with
/// the client until the job's home asks for it (<see cref="FetchJobInput"/>) and it comes as a bulk message
/// (<see cref="JobInput"/>), so user data never rides in this control message (Akka's frame limit would drop a large one).
/// <see cref="TraceParent"/>: the submitting span (W3C <c>traceparent</c>, <see cref="Kernel.Telemetry.TraceContext"/>), or null.
/// </summary>
public sealed record SubmitJob(string JobId, RowBatch Input, JobOptions Options, IActorRef ReplyTo, bool StreamResults = true, bool InputOnRequest = false, string? TraceParent = null) : ICarriesRows, IWireMessage
{
    RowBatch? ICarriesRows.Payload => Input;
}

/// <summary>From a job's home to the client of a <see cref="SubmitJob.InputOnRequest"/> submission: send the input, as <see cref="JobInput"/>, to <see cref="ReplyTo"/>.</summary>
public sealed record FetchJobInput(string JobId, IActorRef ReplyTo) : IWireMessage
{
    /// <summary>Why a job whose input did not come within <paramref name="timeout"/> (the submit timeout) fails.</summary>
    public static string NotSentWithin(TimeSpan timeout) =>
        $"the client did not send the job's input within {timeout.TotalSeconds:F0} s (distributed-inference.submit-timeout)";
}

/// <summary>
/// A job's input, sent by its client when the job's home asks: the home owns it (the client sends new handles of its input
/// each time it is asked, <see cref="RowBatch.Handles"/>).
/// </summary>
public sealed record JobInput(string JobId, RowBatch Input) : ICarriesRows, IBulkMessage
{
    RowBatch? ICarriesRows.Payload => Input;
}

/// <summary>Stop a job; its queued batches are dropped and <see cref="JobFailed"/> is sent.</summary>
public sealed record CancelJob(string JobId) : IWireMessage;

/// <summary>A job was split: its rows, batches and the devices it runs on.</summary>
public sealed record JobAccepted(string JobId, int Rows, int Batches, int Devices) : IBulkMessage;

/// <summary>
/// Rows [Start, Start + Count) of the input are done (in the order batches finish), with their results when the job
/// streams them: the client's own copy, which it owns and may dispose at once (the job keeps its own).
/// </summary>
public sealed record RowsCompleted(string JobId, int Start, int Count, RowBatch? Results, int RowsDone, int RowsTotal) : ICarriesRows, IBulkMessage
{
    RowBatch? ICarriesRows.Payload => Results;
}

/// <summary>
/// Every result in input order, padding dropped (null for an empty input), with where the time went. Rows that failed
/// on their own (<see cref="FailedRows"/>) hold a blank in <see cref="Results"/>: zeros in a tensor, null in a list.
/// The client owns <see cref="Results"/> (the job keeps nothing of it).
/// </summary>
public sealed record JobCompleted(string JobId, RowBatch? Results, JobStatistics Statistics) : ICarriesRows, IBulkMessage
{
    RowBatch? ICarriesRows.Payload => Results;

    /// <summary>The rows that failed alone (see <see cref="RowsFailed"/>), by index; empty when every row was answered.</summary>
    public IReadOnlyList<RowFailure> FailedRows { get; init; } = [];
}

/// <summary>
/// Input rows that failed on their own: their batch failed on <see cref="JobOptions.MaxAttempts"/> attempts, and so did
/// every smaller part of it down to these rows. Every other row is still answered. Sent once per row, at most.
/// </summary>
public sealed record RowsFailed(string JobId, IReadOnlyList<int> Rows, string Error, int RowsDone, int RowsTotal) : IBulkMessage;

/// <summary>One input row that failed, with its error.</summary>
public sealed record RowFailure(int Index, string Error);

/// <summary>The job ended without results. <see cref="InputError"/>: the input itself is at fault (the same job would fail again).</summary>
public sealed record JobFailed(string JobId, string Reason, bool InputError = false) : IBulkMessage;

/// <summary>Wall time of a job, and per device the batches it ran and its busy time.</summary>
public sealed record JobStatistics(TimeSpan Elapsed, IReadOnlyDictionary<string, DeviceShare> Devices, int ResentBatches);

/// <summary>What one device did for a job: batches, real rows and busy time.</summary>
public sealed record DeviceShare(int Batches, int Rows, TimeSpan Busy);

/// <summary>Tell a splitter about a device actor (it watches it and stops using it when it stops).</summary>
public sealed record AddDevice(IActorRef Device) : IWireMessage;

/// <summary>
/// Stop using a device (its node is unreachable, say): running jobs re-send its batches at once instead of waiting
/// for the device to be declared dead. A later <see cref="AddDevice"/> brings it back.
/// </summary>
public sealed record RemoveDevice(IActorRef Device) : IWireMessage;

/// <summary>Asks a splitter (or a node's device manager) for the devices it knows: answered with <see cref="DeviceList"/>.</summary>
public sealed record GetDevices : IWireMessage
{
    public static readonly GetDevices Instance = new();
}

/// <summary>Device actors.</summary>
public sealed record DeviceList(IReadOnlyList<IActorRef> Devices) : IWireMessage;

/// <summary>
/// Run a model over a slice of a job's rows; the device answers its sender <see cref="BatchCompleted"/> or
/// <see cref="BatchFailed"/>. Rows are user data: to a device on another node the batch goes as a bulk message.
/// Ownership (<see cref="RowBatch"/>): the device owns <see cref="Rows"/> and disposes it once the batch ran or was
/// dropped; the job owns <see cref="BatchCompleted.Results"/>. <see cref="TraceParent"/>: the job's span (W3C <c>traceparent</c>), or null.
/// </summary>
public sealed record RunBatch(string JobId, int BatchIndex, RowBatch Rows, string? TraceParent = null) : ICarriesRows, IBulkMessage
{
    RowBatch? ICarriesRows.Payload => Rows;
}

/// <summary>A batch's results, one row per row sent, copied off the device (the job owns them).</summary>
public sealed record BatchCompleted(string JobId, int BatchIndex, RowBatch Results, TimeSpan Busy) : ICarriesRows, IBulkMessage
{
    RowBatch? ICarriesRows.Payload => Results;
}

/// <summary>
/// A batch the device could not run. <see cref="Retryable"/> is false when the input itself is at fault (another
/// device would fail the same way).
/// </summary>
public sealed record BatchFailed(string JobId, int BatchIndex, string Reason, bool Retryable) : IBulkMessage;

/// <summary>Forget the batches of a job that is over (finished elsewhere, failed or cancelled) that are still queued.</summary>
public sealed record DropJob(string JobId) : IWireMessage;

/// <summary>Asks a device for its <see cref="DeviceStatus"/>.</summary>
public sealed record GetDeviceStatus : IWireMessage
{
    public static readonly GetDeviceStatus Instance = new();
}

/// <summary>
/// What a device reports about itself: what it serves (<see cref="Spec"/>: null while loading, and for a model of the
/// caller's own), which jobs for a named model compare, and its description for people (<c>lm #1f2e3d4c (logits, fp32) on
/// cpu</c>, <c>loading</c>).
/// </summary>
public sealed record DeviceStatus(string Device, ReplicaSpec? Spec, string Description, int QueueLength, TimeSpan BusyTime, long CompletedBatches) : IWireMessage;

/// <summary>Sent once a device actor has its model loaded (to the ready-to actor given at creation), with the replica's description.</summary>
public sealed record DeviceReady(string Device, string Description) : IWireMessage;

/// <summary>Sent when a device actor could not load its model; the actor then stops.</summary>
public sealed record DeviceLoadFailed(string Device, string Reason, bool InputError) : IWireMessage;
