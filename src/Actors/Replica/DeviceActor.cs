using System.Diagnostics;
using Akka.Actor;
using Akka.Event;
using DistributedInference.Actors.Kernel.Membership;
using DistributedInference.Actors.Kernel.Rows;
using DistributedInference.Actors.Kernel.Settings;
using DistributedInference.Actors.Kernel.Telemetry;
using DistributedInference.Models;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;

namespace DistributedInference.Actors.Replica;

/// <summary>
/// Owns one device and a model replica on it. Runs on its own pinned thread (TorchSharp calls block and its dispose
/// scopes are thread-static); batches wait in an internal queue so that status queries and drops are answered
/// between batches. A forward pass that throws fails only its batch (the job sends it to another device); one whose
/// error says the device state is bad also has the model disposed and built again with backoff
/// (<see cref="DeviceRecovery"/>). No forward error escapes the actor, so its parent's strategy never restarts it
/// with a queue lost.
/// </summary>
public sealed class DeviceActor : MembersOnlyActor, IWithTimers
{
    private readonly DeviceName _device;
    private readonly ReplicaModelFactory _factory;
    private readonly IActorRef? _readyTo;
    private readonly DeviceRecovery _recovery;
    private readonly Queue<(RunBatch Batch, IActorRef ReplyTo, long QueuedAt)> _queue = new();
    private readonly DeviceMetrics _metrics;
    private readonly string _node;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private IReplicaModel? _model;
    private bool _processing;
    private TimeSpan _busy;
    private long _completed;
    private int _reloads;
    private string? _description;
    private ReplicaSpec? _spec;

    public DeviceActor(DeviceName device, ReplicaModelFactory factory, IActorRef? readyTo, DeviceRecovery recovery)
    {
        _device = device;
        _factory = factory;
        _readyTo = readyTo;
        _recovery = recovery;
        _metrics = new DeviceMetrics(device.ToString());
        _node = ((ExtendedActorSystem)Context.System).Provider.DefaultAddress.ToString();
        Receive<RunBatch>(HandleRunBatch);
        Receive<ProcessNext>(_ => HandleProcessNext());
        Receive<ReloadModel>(_ => HandleReloadModel());
        Receive<DropJob>(HandleDropJob);
        Receive<GetDeviceStatus>(_ => HandleGetStatus());
    }

    public ITimerScheduler Timers { get; set; } = null!;

    /// <param name="readyTo">Told <see cref="DeviceReady"/> once the model is loaded, or <see cref="DeviceLoadFailed"/>.</param>
    /// <param name="recovery">When and how often the model is reloaded after a device error; <see cref="DeviceRecovery.Default"/> if null.</param>
    public static Props Props(DeviceName device, ReplicaModelFactory factory, IActorRef? readyTo = null, DeviceRecovery? recovery = null) =>
        Akka.Actor.Props.Create(() => new DeviceActor(device, factory, readyTo, recovery ?? DeviceRecovery.Default)).WithDispatcher(DistributedInferenceConfig.DeviceDispatcher);

    /// <summary>A name for the actor of the <paramref name="index"/>-th device of a node: device-0, device-1, ...</summary>
    public static string Name(int index) => $"device-{index}";

    protected override void PreStart()
    {
        try
        {
            LibTorch.Initialize();
            _model = _factory(_device);
            _description = _model.Description;
            _spec = _model.Spec;
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

    protected override void PostStop()
    {
        foreach (var (batch, _, _) in _queue)
        {
            batch.Rows.Dispose();
            _metrics.Dropped();
        }

        DisposeModel();
    }

    private void HandleRunBatch(RunBatch batch)
    {
        _queue.Enqueue((batch, Sender, _metrics.Queued()));
        ScheduleNext();
    }

    private void HandleProcessNext()
    {
        _processing = false;
        if (_model is null || !_queue.TryDequeue(out var next))
        {
            return;
        }

        var (batch, replyTo, queuedAt) = next;
        _metrics.Started(queuedAt);
        var rows = batch.Rows.Count;
        using var span = TraceContext.StartDetached("di.batch", ActivityKind.Internal, batch.TraceParent,
            new("di.job.id", batch.JobId), new("di.batch.index", batch.BatchIndex), new("di.batch.rows", rows), new("di.device", _device.ToString()),
            new("di.node", _node));
        var clock = Stopwatch.StartNew();
        try
        {
            // The model takes and returns raw values; the device owns the rows it was sent: whatever the model did not
            // hand back in its results goes now.
            var results = batch.Rows.TakeResult(_model!.Run(batch.Rows.Value), "the model");

            _busy += clock.Elapsed;
            _metrics.Ran(rows, clock.Elapsed, completed: true);
            _completed++;
            _reloads = 0;
            Reply(replyTo, batch, new BatchCompleted(batch.JobId, batch.BatchIndex, results, clock.Elapsed));
        }
        catch (InvalidInputException e)
        {
            span?.SetStatus(ActivityStatusCode.Error, e.Message);
            _metrics.Ran(rows, clock.Elapsed, completed: false);
            batch.Rows.Dispose();
            Reply(replyTo, batch, new BatchFailed(batch.JobId, batch.BatchIndex, e.Message, Retryable: false));
        }
        catch (Exception e)
        {
            span?.SetStatus(ActivityStatusCode.Error, e.Message);
            _metrics.Ran(rows, clock.Elapsed, completed: false);
            batch.Rows.Dispose();
            _log.Warning("{0}: batch {1} of job {2} failed: {3}", _device, batch.BatchIndex, batch.JobId, e.Message);
            Reply(replyTo, batch, new BatchFailed(batch.JobId, batch.BatchIndex, $"{_device}: {e.GetType().Name}: {e.Message.Split('\n', 2)[0]}", Retryable: true));
            if (DeviceStateException.IsDeviceStateBad(e))
            {
                Unload(e);
                return;
            }
        }

        ScheduleNext();
    }

    // The device state is bad: drop the model and build it again after a backoff (batches wait meanwhile).
    private void Unload(Exception error)
    {
        _reloads++;
        DisposeModel();
        if (_reloads > _recovery.MaxReloads)
        {
            _log.Error("{0}: device error after {1} reloads in a row; stopping: {2}", _device, _recovery.MaxReloads, error.Message);
            Context.Stop(Self);
            return;
        }

        var wait = _recovery.Backoff(_reloads);
        _log.Warning("{0}: device state is bad ({1}); reloading the model in {2}", _device, error.Message.Split('\n', 2)[0], wait);
        Timers.StartSingleTimer(ReloadModel.Instance, ReloadModel.Instance, wait);
    }

    private void HandleReloadModel()
    {
        try
        {
            _model = _factory(_device);
            _description = _model.Description;
            _spec = _model.Spec;
        }
        catch (Exception e)
        {
            _log.Error(e, "{0}: could not reload the model; stopping", _device);
            Context.Stop(Self);
            return;
        }

        _log.Info("{0} reloaded: {1}", _device, _model.Description);
        ScheduleNext();
    }

    private void DisposeModel()
    {
        try
        {
            _model?.Dispose();
        }
        catch (Exception e)
        {
            _log.Warning("{0}: disposing the failed model threw: {1}", _device, e.Message);
        }

        _model = null;
    }

    // Answers to a job on another node go through the data plane when both nodes have one (results can outgrow Akka's frames).
    private void Reply(IActorRef replyTo, RunBatch batch, object message) =>
        Kernel.Transport.Transport.Send(Context.System, replyTo, message, Self);

    private void HandleDropJob(DropJob drop)
    {
        foreach (var (batch, _, _) in _queue.Where(item => item.Batch.JobId == drop.JobId))
        {
            batch.Rows.Dispose();
            _metrics.Dropped();
        }

        _queue.RemoveWhere(item => item.Batch.JobId == drop.JobId);
    }

    private void HandleGetStatus() =>
        Sender.Tell(new DeviceStatus(_device.ToString(), _spec, _description ?? "loading", _queue.Count, _busy, _completed));

    // One batch per message: whatever arrived meanwhile (status queries, drops) is handled before the next batch.
    private void ScheduleNext()
    {
        if (!_processing && _model is not null && _queue.Count > 0)
        {
            _processing = true;
            Self.Tell(ProcessNext.Instance);
        }
    }

    private sealed class ProcessNext
    {
        public static readonly ProcessNext Instance = new();
    }

    private sealed class ReloadModel
    {
        public static readonly ReloadModel Instance = new();
    }
}
