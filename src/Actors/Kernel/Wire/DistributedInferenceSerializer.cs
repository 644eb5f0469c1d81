using System.Runtime.Serialization;
using Akka.Actor;
using Akka.Serialization;
using DistributedInference.Actors.Cluster.Devices;
using DistributedInference.Actors.Cluster.Jobs;
using DistributedInference.Actors.Cluster.Stages;
using DistributedInference.Actors.Kernel.Membership;
using DistributedInference.Actors.Kernel.Rows;
using DistributedInference.Actors.Pipeline;
using DistributedInference.Actors.Processes;
using DistributedInference.Actors.Replica;
using DistributedInference.Models.Staging;

namespace DistributedInference.Actors.Kernel.Wire;

/// <summary>
/// The explicit binary serializer of every message that may cross nodes (bound in hocon/, identifier
/// <see cref="Id"/>): no type-name JSON. Payloads (rows, results, activations) go through <see cref="ValueCodec"/>;
/// actor references as their serialized paths. A malformed frame throws <see cref="SerializationException"/>, which
/// Akka.Remote logs and drops: the receiving node keeps running.
/// </summary>
public sealed class DistributedInferenceSerializer : SerializerWithStringManifest
{
    public const int Id = 1771;

    private readonly Dictionary<Type, (string Manifest, Action<BinaryWriter, object> Write)> _writers = new();
    private readonly Dictionary<string, Func<BinaryReader, object>> _readers = new(StringComparer.Ordinal);

    public DistributedInferenceSerializer(ExtendedActorSystem system)
        : base(system)
    {
        // Device protocol (replica mode).
        Add<RunBatch>("run-batch", (w, m) => { Str(w, m.JobId); w.Write(m.BatchIndex); Value(w, m.Rows); Value(w, m.ReplyDataPlane); }, r => new RunBatch(Str(r), r.ReadInt32(), Required(r), ValueCodec.Read(r) as string));
        Add<BatchCompleted>("batch-completed", (w, m) => { Str(w, m.JobId); w.Write(m.BatchIndex); Value(w, m.Results); Time(w, m.Busy); }, r => new BatchCompleted(Str(r), r.ReadInt32(), Required(r), Time(r)));
        Add<BatchFailed>("batch-failed", (w, m) => { Str(w, m.JobId); w.Write(m.BatchIndex); Str(w, m.Reason); w.Write(m.Retryable); }, r => new BatchFailed(Str(r), r.ReadInt32(), Str(r), r.ReadBoolean()));
        Add<DropJob>("drop-job", (w, m) => Str(w, m.JobId), r => new DropJob(Str(r)));
        Add<GetDeviceStatus>("get-device-status", (_, _) => { }, _ => GetDeviceStatus.Instance);
        Add<DeviceStatus>("device-status", (w, m) => { Str(w, m.Device); Str(w, m.Model); w.Write(m.QueueLength); Time(w, m.BusyTime); w.Write(m.CompletedBatches); }, r => new DeviceStatus(Str(r), Str(r), r.ReadInt32(), Time(r), r.ReadInt64()));
        Add<DeviceReady>("device-ready", (w, m) => { Str(w, m.Device); Str(w, m.Model); }, r => new DeviceReady(Str(r), Str(r)));
        Add<DeviceLoadFailed>("device-load-failed", (w, m) => { Str(w, m.Device); Str(w, m.Reason); w.Write(m.InputError); }, r => new DeviceLoadFailed(Str(r), Str(r), r.ReadBoolean()));

        // Jobs (replica mode).
        Add<SubmitJob>("submit-job", (w, m) => { Str(w, m.JobId); Value(w, m.Input); Options(w, m.Options); Ref(w, m.ReplyTo); w.Write(m.StreamResults); Value(w, m.ReplyDataPlane); w.Write(m.InputOnRequest); }, r => new SubmitJob(Str(r), Required(r), Options(r), Ref(r), r.ReadBoolean(), ValueCodec.Read(r) as string, r.ReadBoolean()));
        Add<FetchJobInput>("fetch-job-input", (w, m) => { Str(w, m.JobId); Ref(w, m.ReplyTo); Value(w, m.ReplyDataPlane); }, r => new FetchJobInput(Str(r), Ref(r), ValueCodec.Read(r) as string));
        Add<JobInput>("job-input", (w, m) => { Str(w, m.JobId); Value(w, m.Input); }, r => new JobInput(Str(r), Required(r)));
        Add<CancelJob>("cancel-job", (w, m) => Str(w, m.JobId), r => new CancelJob(Str(r)));
        Add<JobAccepted>("job-accepted", (w, m) => { Str(w, m.JobId); w.Write(m.Rows); w.Write(m.Batches); w.Write(m.Devices); }, r => new JobAccepted(Str(r), r.ReadInt32(), r.ReadInt32(), r.ReadInt32()));
        Add<RowsCompleted>("rows-completed", (w, m) => { Str(w, m.JobId); w.Write(m.Start); w.Write(m.Count); Value(w, m.Results); w.Write(m.RowsDone); w.Write(m.RowsTotal); }, r => new RowsCompleted(Str(r), r.ReadInt32(), r.ReadInt32(), Optional(r), r.ReadInt32(), r.ReadInt32()));
        Add<JobCompleted>("job-completed", (w, m) => { Str(w, m.JobId); Value(w, m.Results); Statistics(w, m.Statistics); RowFailures(w, m.FailedRows); }, r => new JobCompleted(Str(r), Optional(r), Statistics(r)) { FailedRows = RowFailures(r) });
        Add<RowsFailed>("rows-failed", (w, m) => { Str(w, m.JobId); w.Write(m.Rows.Count); foreach (var row in m.Rows) { w.Write(row); } Str(w, m.Error); w.Write(m.RowsDone); w.Write(m.RowsTotal); }, r => new RowsFailed(Str(r), Many(r, r => r.ReadInt32()), Str(r), r.ReadInt32(), r.ReadInt32()));
        Add<JobFailed>("job-failed", (w, m) => { Str(w, m.JobId); Str(w, m.Reason); w.Write(m.InputError); }, r => new JobFailed(Str(r), Str(r), r.ReadBoolean()));

        // Device registry.
        Add<GetLocalDevices>("get-local-devices", (_, _) => { }, _ => GetLocalDevices.Instance);
        Add<GetDevices>("get-devices", (_, _) => { }, _ => GetDevices.Instance);
        Add<DeviceList>("device-list", (w, m) => { w.Write(m.Devices.Count); foreach (var d in m.Devices) { Ref(w, d); } Value(w, m.DataPlane); }, r => new DeviceList(Many(r, Ref), ValueCodec.Read(r) as string));
        Add<AddDevice>("add-device", (w, m) => { Ref(w, m.Device); Value(w, m.DataPlane); }, r => new AddDevice(Ref(r), ValueCodec.Read(r) as string));
        Add<RemoveDevice>("remove-device", (w, m) => Ref(w, m.Device), r => new RemoveDevice(Ref(r)));

        // Pipeline mode.
        Add<RunPipeline>("run-pipeline", (w, m) => { Str(w, m.JobId); Value(w, m.Input); w.Write(m.NumChunks); w.Write(m.GatherOutput); Ref(w, m.ReplyTo); }, r => new RunPipeline(Str(r), Required(r), r.ReadInt32(), r.ReadBoolean(), Ref(r)));
        Add<MicroBatch>("micro-batch", (w, m) => { Str(w, m.JobId); w.Write(m.Index); Value(w, m.Payload); }, r => new MicroBatch(Str(r), r.ReadInt32(), Required(r)));
        Add<MicroBatchFailed>("micro-batch-failed", (w, m) => { Str(w, m.JobId); w.Write(m.Index); w.Write(m.Stage); Str(w, m.Reason); w.Write(m.InputError); }, r => new MicroBatchFailed(Str(r), r.ReadInt32(), r.ReadInt32(), Str(r), r.ReadBoolean()));
        Add<StageTiming>("stage-timing", (w, m) => { w.Write(m.Stage); Str(w, m.JobId); w.Write(m.Index); Time(w, m.Queued); Time(w, m.Busy); }, r => new StageTiming(r.ReadInt32(), Str(r), r.ReadInt32(), Time(r), Time(r)));
        Add<StageReady>("stage-ready", (w, m) => { w.Write(m.Stage); Str(w, m.Description); }, r => new StageReady(r.ReadInt32(), Str(r)));
        Add<StageLoadFailed>("stage-load-failed", (w, m) => { w.Write(m.Stage); Str(w, m.Reason); w.Write(m.InputError); }, r => new StageLoadFailed(r.ReadInt32(), Str(r), r.ReadBoolean()));
        Add<OutputGathered>("output-gathered", (w, m) => { Str(w, m.JobId); Value(w, m.Output); }, r => new OutputGathered(Str(r), Required(r)));
        Add<PipelineCompleted>("pipeline-completed", (w, m) => { Str(w, m.JobId); Value(w, m.Output); RunMetrics(w, m.Metrics); }, r => new PipelineCompleted(Str(r), Required(r), RunMetrics(r)));
        Add<GetGatheredOutputs>("get-gathered-outputs", (_, _) => { }, _ => GetGatheredOutputs.Instance);
        Add<GatheredOutputs>("gathered-outputs", (w, m) => { w.Write(m.Outputs.Count); foreach (var o in m.Outputs) { Str(w, o.JobId); Value(w, o.Output); } }, r => new GatheredOutputs(Many(r, r => new OutputGathered(Str(r), Required(r)))));
        Add<ConnectStage>("connect-stage", (w, m) => { Ref(w, m.Next); Value(w, m.NextDataPlane); }, r => new ConnectStage(Ref(r), ValueCodec.Read(r) as string));
        Add<StageHosted>("stage-hosted", (w, m) => { w.Write(m.Stage); Ref(w, m.StageActor); Value(w, m.DataPlane); }, r => new StageHosted(r.ReadInt32(), Ref(r), ValueCodec.Read(r) as string));

        // Stage hosts (pipeline stages on other nodes).
        Add<GetJobStatus>("get-job-status", (w, m) => Str(w, m.JobId), r => new GetJobStatus(Str(r)));
        Add<JobStatus>("job-status", (w, m) => { Str(w, m.JobId); w.Write((int)m.State); w.Write(m.RowsDone); w.Write(m.RowsTotal); Value(w, m.Reason); }, r => new JobStatus(Str(r), State(r), r.ReadInt32(), r.ReadInt32(), ValueCodec.Read(r) as string));
        Add<GetStageHostInfo>("get-stage-host-info", (_, _) => { }, _ => GetStageHostInfo.Instance);
        Add<StageHostInfo>("stage-host-info", WriteStageHostInfo, ReadStageHostInfo);
        Add<HostStage>("host-stage", (w, m) => { Spec(w, m.Spec); Ref(w, m.Coordinator); }, r => new HostStage(Spec(r), Ref(r)));
        // Membership (the join-time proof of the cluster secret).
        Add<MemberChallenge>("member-challenge", (w, m) => Str(w, m.Nonce), r => new MemberChallenge(Str(r)));
        Add<MemberProof>("member-proof", (w, m) => { Str(w, m.ChallengeNonce); Str(w, m.Nonce); Str(w, m.Proof); }, r => new MemberProof(Str(r), Str(r), Str(r)));
        Add<MemberAccepted>("member-accepted", (w, m) => { Str(w, m.ChallengeNonce); Str(w, m.Proof); }, r => new MemberAccepted(Str(r), Str(r)));
        Add<MemberRefused>("member-refused", (w, m) => Str(w, m.Reason), r => new MemberRefused(Str(r)));

        Add<PipelineFailed>("pipeline-failed", (w, m) => { Str(w, m.JobId); Str(w, m.Reason); w.Write(m.InputError); }, r => new PipelineFailed(Str(r), Str(r), r.ReadBoolean()));

        // Process groups (di launch -- PROGRAM: ProcessState across processes).
        Add<ProcessArrived>("process-arrived", (w, m) => { w.Write(m.Round); w.Write(m.Rank); Bytes(w, m.Part); }, r => new ProcessArrived(r.ReadInt32(), r.ReadInt32(), Bytes(r)));
        Add<ProcessesReleased>("processes-released", (w, m) => { w.Write(m.Round); w.Write(m.Parts.Count); foreach (var p in m.Parts) { Bytes(w, p); } }, r => new ProcessesReleased(r.ReadInt32(), Many(r, Bytes)));
        Add<ProcessRoundRefused>("process-round-refused", (w, m) => { w.Write(m.Round); Str(w, m.Reason); }, r => new ProcessRoundRefused(r.ReadInt32(), Str(r)));
        Add<GetProcessArrivals>("get-process-arrivals", (w, m) => w.Write(m.Round), r => new GetProcessArrivals(r.ReadInt32()));
        Add<ProcessArrivals>("process-arrivals", (w, m) => { w.Write(m.Round); w.Write(m.Ranks.Count); foreach (var rank in m.Ranks) { w.Write(rank); } }, r => new ProcessArrivals(r.ReadInt32(), Many(r, r => r.ReadInt32())));
    }

    public override int Identifier => Id;

    /// <summary>The message types this serializer is bound to (hocon/ lists the same).</summary>
    public IReadOnlyCollection<Type> MessageTypes => _writers.Keys;

    public override string Manifest(object o) =>
        _writers.TryGetValue(o.GetType(), out var entry) ? entry.Manifest : throw new SerializationException($"no manifest for {o.GetType().Name}");

    /// <summary>
    /// The message as Akka remoting sends it to another node, once per message sent. The rows a message carries
    /// (<see cref="ICarriesRows"/>) are released once written, or once writing failed: the sender let go of them when it
    /// sent the message, and the receiver gets its own copy (<see cref="RowPayload"/>'s rule). The data plane writes
    /// with <see cref="Write"/> and releases them itself.
    /// </summary>
    public override byte[] ToBinary(object obj)
    {
        try
        {
            using var stream = new MemoryStream();
            using (var writer = new BinaryWriter(stream))
            {
                Write(writer, obj);
            }

            return stream.ToArray();
        }
        finally
        {
            (obj as ICarriesRows)?.ReleaseRows();
        }
    }

    public override object FromBinary(byte[] bytes, string manifest)
    {
        using var reader = new BinaryReader(new MemoryStream(bytes, writable: false));
        return Read(reader, manifest);
    }

    /// <summary>Writes <paramref name="message"/>'s body (what <see cref="Manifest"/> names) where the writer stands.</summary>
    public void Write(BinaryWriter writer, object message)
    {
        if (!_writers.TryGetValue(message.GetType(), out var entry))
        {
            throw new SerializationException($"cannot serialize {message.GetType().Name}");
        }

        entry.Write(writer, message);
    }

    /// <summary>Reads one message from where the reader stands to the end of its stream, which must be exactly the message.</summary>
    public object Read(BinaryReader reader, string manifest)
    {
        if (!_readers.TryGetValue(manifest, out var read))
        {
            throw new SerializationException($"unknown manifest '{manifest}'");
        }

        try
        {
            var message = read(reader);
            var left = reader.BaseStream.Length - reader.BaseStream.Position;
            if (left != 0)
            {
                throw new SerializationException($"{left} bytes left over after '{manifest}'");
            }

            return message;
        }
        catch (Exception e) when (e is EndOfStreamException or IOException or ArgumentException or FormatException or OverflowException)
        {
            throw new SerializationException($"malformed '{manifest}' frame: {e.Message}", e);
        }
    }

    private void Add<T>(string manifest, Action<BinaryWriter, T> write, Func<BinaryReader, T> read)
        where T : notnull
    {
        _writers[typeof(T)] = (manifest, (w, o) => write(w, (T)o));
        _readers[manifest] = r => read(r);
    }

    private static void Str(BinaryWriter writer, string text) => ValueCodec.WriteString(writer, text);

    private static string Str(BinaryReader reader) => ValueCodec.ReadString(reader);

    private static void Value(BinaryWriter writer, object? value) => ValueCodec.Write(writer, value);

    private static void Value(BinaryWriter writer, RowPayload? payload) => ValueCodec.Write(writer, payload?.Value);

    private static RowPayload Required(BinaryReader reader) => Optional(reader) ?? throw new SerializationException("a required payload is null");

    // Rows as the receiver's own payload; a value that is not one (a bare number, say) is refused and released.
    private static RowPayload? Optional(BinaryReader reader)
    {
        var value = ValueCodec.Read(reader);
        try
        {
            return RowPayload.FromNullable(value);
        }
        catch (ArgumentException e)
        {
            RowOwnership.Dispose(value);
            throw new SerializationException(e.Message, e);
        }
    }

    private static void Time(BinaryWriter writer, TimeSpan time) => writer.Write(time.Ticks);

    private static TimeSpan Time(BinaryReader reader) => TimeSpan.FromTicks(reader.ReadInt64());

    private static JobState State(BinaryReader reader)
    {
        var state = (JobState)reader.ReadInt32();
        return Enum.IsDefined(state) ? state : throw new SerializationException($"unknown job state {(int)state}");
    }

    private static void Spec(BinaryWriter writer, StageSpec spec)
    {
        writer.Write(spec.Stage);
        writer.Write(spec.FirstLayer);
        writer.Write(spec.LayerCount);
        Str(writer, spec.Device);
        Str(writer, spec.DType);
        writer.Write(spec.Last);
        Str(writer, spec.Model);
    }

    private static StageSpec Spec(BinaryReader reader) =>
        new(reader.ReadInt32(), reader.ReadInt32(), reader.ReadInt32(), Str(reader), Str(reader), reader.ReadBoolean(), Str(reader));

    private static void WriteStageHostInfo(BinaryWriter writer, StageHostInfo info)
    {
        writer.Write(info.Devices.Count);
        foreach (var device in info.Devices)
        {
            Str(writer, device);
        }

        Str(writer, info.Model);
        writer.Write(info.Layers.Count);
        foreach (var layer in info.Layers)
        {
            Str(writer, layer.Name);
            writer.Write(layer.ParameterCount);
            writer.Write(layer.ParameterBytes);
            writer.Write(layer.FlopsPerToken);
        }

        var free = info.FreeBytes ?? [];
        writer.Write(free.Count);
        foreach (var bytes in free)
        {
            writer.Write(bytes);
        }
    }

    private static StageHostInfo ReadStageHostInfo(BinaryReader reader)
    {
        var devices = Many(reader, Str);
        var model = Str(reader);
        var layers = Many(reader, r => new StagedLayerInfo(Str(r), r.ReadInt64(), r.ReadInt64(), r.ReadInt64()));
        var free = Many(reader, r => r.ReadInt64());
        return new StageHostInfo(devices, model, layers, free.Count == 0 ? null : free);
    }

    private static void Options(BinaryWriter writer, JobOptions options)
    {
        writer.Write(options.ApplyPadding);
        writer.Write(options.MaxBatchSize);
        Time(writer, options.BatchTimeout);
        writer.Write(options.MaxAttempts);
        Value(writer, options.Model);
    }

    private static JobOptions Options(BinaryReader reader) =>
        new(reader.ReadBoolean(), reader.ReadInt32()) { BatchTimeout = Time(reader), MaxAttempts = reader.ReadInt32(), Model = ValueCodec.Read(reader) as string };

    private static void RowFailures(BinaryWriter writer, IReadOnlyList<RowFailure> failures)
    {
        writer.Write(failures.Count);
        foreach (var failure in failures)
        {
            writer.Write(failure.Index);
            Str(writer, failure.Error);
        }
    }

    private static List<RowFailure> RowFailures(BinaryReader reader) => Many(reader, r => new RowFailure(r.ReadInt32(), Str(r)));

    private static void Statistics(BinaryWriter writer, JobStatistics statistics)
    {
        Time(writer, statistics.Elapsed);
        writer.Write(statistics.Devices.Count);
        foreach (var (device, share) in statistics.Devices)
        {
            Str(writer, device);
            writer.Write(share.Batches);
            writer.Write(share.Rows);
            Time(writer, share.Busy);
        }

        writer.Write(statistics.ResentBatches);
    }

    private static JobStatistics Statistics(BinaryReader reader)
    {
        var elapsed = Time(reader);
        var count = Count(reader);
        var devices = new Dictionary<string, DeviceShare>(StringComparer.Ordinal);
        for (var i = 0; i < count; i++)
        {
            devices[Str(reader)] = new DeviceShare(reader.ReadInt32(), reader.ReadInt32(), Time(reader));
        }

        return new JobStatistics(elapsed, devices, reader.ReadInt32());
    }

    private static void RunMetrics(BinaryWriter writer, PipelineRunMetrics metrics)
    {
        Time(writer, metrics.Elapsed);
        writer.Write(metrics.Stages.Count);
        foreach (var stage in metrics.Stages)
        {
            writer.Write(stage.Stage);
            writer.Write(stage.MicroBatches);
            Time(writer, stage.Busy);
            Time(writer, stage.Idle);
            Time(writer, stage.QueueTime);
        }
    }

    private static PipelineRunMetrics RunMetrics(BinaryReader reader)
    {
        var elapsed = Time(reader);
        return new PipelineRunMetrics(elapsed, Many(reader, r => new StageMetrics(r.ReadInt32(), r.ReadInt32(), Time(r), Time(r), Time(r))));
    }

    private static void Bytes(BinaryWriter writer, byte[] bytes)
    {
        writer.Write(bytes.Length);
        writer.Write(bytes);
    }

    // The length is checked against what is left of the frame before anything is allocated.
    private static byte[] Bytes(BinaryReader reader) => reader.ReadBytes(Count(reader));

    // A counted list, grown as its items are read: the count alone reserves nothing.
    private static List<T> Many<T>(BinaryReader reader, Func<BinaryReader, T> read)
    {
        var count = Count(reader);
        var items = new List<T>(Math.Min(count, 64));
        for (var i = 0; i < count; i++)
        {
            items.Add(read(reader));
        }

        return items;
    }

    private static int Count(BinaryReader reader)
    {
        var count = reader.ReadInt32();
        if (count < 0 || count > reader.BaseStream.Length - reader.BaseStream.Position)
        {
            throw new SerializationException($"count {count} does not fit the frame");
        }

        return count;
    }

    private void Ref(BinaryWriter writer, IActorRef actor) => Str(writer, Akka.Serialization.Serialization.SerializedActorPath(actor));

    private IActorRef Ref(BinaryReader reader) => system.Provider.ResolveActorRef(Str(reader));
}
