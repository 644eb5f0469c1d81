using System.Diagnostics;
using Akka.Actor;
using Akka.Event;
using DistributedInference.Actors.Configuration;
using DistributedInference.Models;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;

namespace DistributedInference.Actors.Replica;

/// <summary>
/// Owns one device and a model replica on it. Runs on its own pinned thread (TorchSharp calls block and its dispose
/// scopes are thread-static); batches wait in an internal queue so that status queries and drops are answered
/// between batches.
/// </summary>
public sealed class DeviceActor : ReceiveActor
{
    private readonly DeviceName _device;
    private readonly ReplicaModelFactory _factory;
    private readonly IActorRef? _readyTo;
    private readonly Queue<(RunBatch Batch, IActorRef ReplyTo)> _queue = new();
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private IReplicaModel? _model;
    private bool _processing;
    private TimeSpan _busy;
    private long _completed;

    public DeviceActor(DeviceName device, ReplicaModelFactory factory, IActorRef? readyTo)
    {
        _device = device;
        _factory = factory;
        _readyTo = readyTo;
        Receive<RunBatch>(HandleRunBatch);
        Receive<ProcessNext>(_ => HandleProcessNext());
        Receive<DropJob>(HandleDropJob);
        Receive<GetDeviceStatus>(_ => HandleGetStatus());
    }

    /// <param name="readyTo">Told <see cref="DeviceReady"/> once the model is loaded, or <see cref="DeviceLoadFailed"/>.</param>
    public static Props Props(DeviceName device, ReplicaModelFactory factory, IActorRef? readyTo = null) =>
        Akka.Actor.Props.Create(() => new DeviceActor(device, factory, readyTo)).WithDispatcher(DistributedInferenceConfig.DeviceDispatcher);

    /// <summary>A name for the actor of the <paramref name="index"/>-th device of a node: device-0, device-1, ...</summary>
    public static string Name(int index) => $"device-{index}";

    protected override void PreStart()
    {
        try
        {
            LibTorch.Initialize();
            _model = _factory(_device);
        }
        catch (Exception e)
        {
            _log.Error(e, "{0}: could not load the model", _device);
            _readyTo?.Tell(new DeviceLoadFailed(_device.ToString(), e.Message.Split('\n', 2)[0], e is InvalidInputException));
            Context.Stop(Self);
            return;
        }

        _log.Info("{0} ready: {1}", _device, _model.Description);
        _readyTo?.Tell(new DeviceReady(_device.ToString(), _model.Description));
    }

    protected override void PostStop() => _model?.Dispose();

    private void HandleRunBatch(RunBatch batch)
    {
        _queue.Enqueue((batch, Sender));
        ScheduleNext();
    }

    private void HandleProcessNext()
    {
        _processing = false;
        if (!_queue.TryDequeue(out var next))
        {
            return;
        }

        var (batch, replyTo) = next;
        var clock = Stopwatch.StartNew();
        try
        {
            var results = _model!.Run(batch.Rows);
            _busy += clock.Elapsed;
            _completed++;
            Reply(replyTo, batch, new BatchCompleted(batch.JobId, batch.BatchIndex, results, clock.Elapsed));
        }
        catch (InvalidInputException e)
        {
            Reply(replyTo, batch, new BatchFailed(batch.JobId, batch.BatchIndex, e.Message, Retryable: false));
        }
        catch (Exception e)
        {
            _log.Warning("{0}: batch {1} of job {2} failed: {3}", _device, batch.BatchIndex, batch.JobId, e.Message);
            Reply(replyTo, batch, new BatchFailed(batch.JobId, batch.BatchIndex, $"{_device}: {e.GetType().Name}: {e.Message.Split('\n', 2)[0]}", Retryable: true));
        }

        ScheduleNext();
    }

    // Answers to a job on another node go through the data plane when both nodes have one (results can outgrow Akka's frames).
    private void Reply(IActorRef replyTo, RunBatch batch, object message) =>
        DataPlane.TensorDataPlane.Tell(Context.System, batch.ReplyDataPlane, replyTo, message, Self);

    private void HandleDropJob(DropJob drop) => _queue.RemoveWhere(item => item.Batch.JobId == drop.JobId);

    private void HandleGetStatus() =>
        Sender.Tell(new DeviceStatus(_device.ToString(), _model?.Description ?? "loading", _queue.Count, _busy, _completed));

    // One batch per message: whatever arrived meanwhile (status queries, drops) is handled before the next batch.
    private void ScheduleNext()
    {
        if (!_processing && _queue.Count > 0)
        {
            _processing = true;
            Self.Tell(ProcessNext.Instance);
        }
    }

    private sealed class ProcessNext
    {
        public static readonly ProcessNext Instance = new();
    }
}
