using System.Diagnostics;
using Akka.Actor;
using Akka.Event;
using DistributedInference.Actors.Kernel.Membership;
using DistributedInference.Actors.Kernel.Rows;
using DistributedInference.Actors.Kernel.Settings;
using DistributedInference.Actors.Kernel.Telemetry;
using DistributedInference.Models;
using DistributedInference.Models.Tasks;
using Transport = DistributedInference.Actors.Kernel.Transport.Transport;

namespace DistributedInference.Actors.Replica;

/// <summary>
/// One job, from split to gather: the actor that drives a <see cref="BatchScheduler{TDevice}"/> (the policy: batches per
/// device, stealing, retries, bisection of failing batches) and a <see cref="RowAssembler"/> (results back in input
/// order, each row once), and talks to devices and the client. Its phases: it waits for its input when submitted
/// with <see cref="SubmitJob.InputOnRequest"/> (asked of the client with <see cref="FetchJobInput"/>; it fails after
/// <c>distributed-inference.submit-timeout</c>), asks the devices which model they serve when the job names one
/// (<see cref="JobOptions.Model"/>; none serving it: the job fails as an input error naming what they serve), runs, and
/// stops once it answered <see cref="JobCompleted"/> or <see cref="JobFailed"/>. Devices that come later join (after the
/// same model check). A job is never restarted: if it throws, it stops and the client gets one <see cref="JobFailed"/>
/// naming the error (<see cref="PostStop"/>); nothing it already sent is sent again. Rows are user data: batches and
/// results take the <see cref="Transport"/>, which puts them on the data plane between nodes that have one.
/// </summary>
public sealed class ReplicaJob : MembersOnlyActor, IWithTimers
{
    private static readonly TimeSpan ModelCheckTimeout = TimeSpan.FromSeconds(30);

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly List<IActorRef> _candidates;
    private readonly HashSet<IActorRef> _asked = [];
    private readonly List<IActorRef> _serving = [];
    private readonly SortedSet<string> _otherModels = new(StringComparer.Ordinal);
    private readonly Dictionary<IActorRef, DeviceShare> _usage = [];
    private SubmitJob _job;
    private int _rows;
    private BatchScheduler<IActorRef>? _scheduler;
    private RowAssembler? _results;
    private bool _ended;
    private Exception? _crash;
    private string? _failure;
    private Activity? _span;

    public ReplicaJob(SubmitJob job, IReadOnlyList<IActorRef> devices)
    {
        _job = job;
        _candidates = devices.Distinct().ToList();
        Receive<CancelJob>(_ => Fail("cancelled"));
    }

    public ITimerScheduler Timers { get; set; } = null!;

    /// <param name="job">The job; with <see cref="SubmitJob.InputOnRequest"/> its input is fetched from the client first.</param>
    /// <param name="devices">The devices it may use.</param>
    public static Props Props(SubmitJob job, IReadOnlyList<IActorRef> devices) =>
        Akka.Actor.Props.Create(() => new ReplicaJob(job, devices)).WithDispatcher(DistributedInferenceConfig.ComputeDispatcher);

    private TimeSpan InputTimeout => DistributedInferenceSettings.Get(Context.System).SubmitTimeout;

    // How long devices may take to say what they serve (a busy device answers between two batches).
    private TimeSpan ModelCheckWait => ModelCheckTimeout < _job.Options.BatchTimeout ? ModelCheckTimeout : _job.Options.BatchTimeout;

    protected override void PreStart()
    {
        _span = TraceContext.StartDetached("di.job.coordinate", ActivityKind.Server, _job.TraceParent,
            new("di.job.id", _job.JobId), new("di.node", ((ExtendedActorSystem)Context.System).Provider.DefaultAddress.ToString()));
        if (_job.InputOnRequest)
        {
            // The input stays with the client until asked for, and comes as a bulk message (never in a control message).
            Become(AwaitingInput);
            _job.ReplyTo.Tell(new FetchJobInput(_job.JobId, Self), Self);
            Timers.StartSingleTimer(InputTimedOut.Instance, InputTimedOut.Instance, InputTimeout);
            return;
        }

        Begin();
    }

    // Whatever a handler throws ends the job (see PostStop) after the supervisor stops it.
    protected override bool AroundReceive(Receive receive, object message)
    {
        try
        {
            return base.AroundReceive(receive, message);
        }
        catch (Exception e)
        {
            _crash ??= e;
            throw;
        }
    }

    // A job is never run twice: a restart stops it (PreRestart has already told the client through PostStop).
    protected override void PostRestart(Exception reason)
    {
        _ended = true;
        Context.Stop(Self);
    }

    // A job that stops before it ended (it threw, or was stopped from outside) tells its devices and client once.
    protected override void PostStop()
    {
        _results?.Dispose();
        _job.Input.Dispose();
        TraceContext.Stop(_span, _ended ? _failure : "stopped before the job ended");
        if (_ended)
        {
            return;
        }

        _ended = true;
        DropOnDevices();
        Ending();
        ToClient(new JobFailed(_job.JobId, _crash is null ? "the job's actor was stopped before the job ended" : $"the job's actor failed: {Describe(_crash)}"));
    }

    private void AwaitingInput()
    {
        CommonToEveryPhase();
        Receive<JobInput>(input => input.JobId == _job.JobId, input =>
        {
            Timers.Cancel(InputTimedOut.Instance);
            _job = _job with { Input = input.Input, InputOnRequest = false };
            Begin();
        });
        Receive<InputTimedOut>(_ => Fail(FetchJobInput.NotSentWithin(InputTimeout)));
    }

    private void CheckingModels()
    {
        CommonToEveryPhase();
        Receive<DeviceStatus>(HandleModelAnswer);
        Receive<ModelCheckTimedOut>(_ =>
        {
            _asked.Clear();
            StartOnServing();
        });
    }

    private void Running()
    {
        CommonToEveryPhase();
        Receive<BatchCompleted>(c => c.JobId == _job.JobId, HandleBatchCompleted);
        Receive<BatchFailed>(f => f.JobId == _job.JobId, HandleBatchFailed);
        Receive<BatchTimedOut>(t => Apply(_scheduler!.TimedOut(t.Batch, t.Attempt, $"no answer within {_job.Options.BatchTimeout}")));
        Receive<DeviceStatus>(HandleModelAnswer);
    }

    // Devices come and go, and the client may cancel, in every phase.
    private void CommonToEveryPhase()
    {
        Receive<CancelJob>(_ => Fail("cancelled"));
        Receive<AddDevice>(add => HandleAddDevice(add.Device));
        Receive<RemoveDevice>(remove =>
        {
            Context.Unwatch(remove.Device);
            HandleDeviceStopped(remove.Device);
        });
        Receive<Terminated>(terminated => HandleDeviceStopped(terminated.ActorRef));
    }

    private void Begin()
    {
        try
        {
            _rows = _job.Input.Count;
        }
        catch (InvalidInputException e)
        {
            Fail(e.Message, inputError: true);
            return;
        }
        catch (Exception e)
        {
            _crash = e;
            _log.Error(e, "job {0}: could not start", _job.JobId);
            Fail($"the job could not start: {Describe(e)}");
            return;
        }

        if (_job.Options.MaxBatchSize <= 0)
        {
            Fail($"max_batch_size must be positive, got {_job.Options.MaxBatchSize}", inputError: true);
        }
        else if (_rows == 0)
        {
            ToClient(new JobAccepted(_job.JobId, 0, 0, _candidates.Count));
            Complete();
        }
        else if (_candidates.Count == 0)
        {
            Fail("no devices to run on");
        }
        else if (_job.Options.Model is null)
        {
            Start(_candidates);
        }
        else
        {
            // A job for a named model first asks every device what it serves, and runs only on those serving that model.
            Become(CheckingModels);
            _candidates.ForEach(AskModel);
            Timers.StartSingleTimer(ModelCheckTimedOut.Instance, ModelCheckTimedOut.Instance, ModelCheckWait);
        }
    }

    private void Start(IReadOnlyList<IActorRef> devices)
    {
        Timers.Cancel(ModelCheckTimedOut.Instance);
        var plan = BatchPlan.Cut(_rows, devices.Count, _job.Options.MaxBatchSize, _job.Options.ApplyPadding);
        _scheduler = new BatchScheduler<IActorRef>(devices, plan, _job.Options.MaxAttempts);
        _results = new RowAssembler(_rows, copyTensors: !_job.StreamResults);
        foreach (var device in devices)
        {
            Context.Watch(device);
            _usage.TryAdd(device, new DeviceShare(0, 0, TimeSpan.Zero));
        }

        Become(Running);
        ToClient(new JobAccepted(_job.JobId, _rows, _scheduler.Batches.Count, devices.Count));
        Send(_scheduler.NextForAll());
    }

    private void AskModel(IActorRef device)
    {
        if (_asked.Add(device))
        {
            Context.Watch(device);
            device.Tell(GetDeviceStatus.Instance);
        }
    }

    private void HandleModelAnswer(DeviceStatus status)
    {
        var device = Sender;
        if (!_asked.Remove(device))
        {
            return;
        }

        // The one rule by which replica jobs pick devices: the weights the device holds are the job's.
        var serves = Equals(status.Spec?.Model, _job.Options.Model);
        if (!serves)
        {
            _log.Info("job {0}: device {1} serves {2}, not {3}; not used", _job.JobId, device.Path, status.Description, _job.Options.Model);
            _otherModels.Add(status.Spec?.ToString() ?? status.Description);
            Context.Unwatch(device);
        }

        if (_scheduler is not null)
        {
            if (serves)
            {
                JoinLate(device);
            }

            return;
        }

        if (serves)
        {
            _serving.Add(device);
        }

        if (_asked.Count == 0)
        {
            StartOnServing();
        }
    }

    // Every device asked has answered (or stopped, or the time to answer is over): start on those serving the model.
    private void StartOnServing()
    {
        if (_serving.Count > 0)
        {
            Start(_serving.ToList());
        }
        else if (_otherModels.Count > 0)
        {
            var model = _job.Options.Model;
            Fail($"no device serves model {model} (they serve {string.Join(", ", _otherModels)}): run the job for a model they serve, or start devices with model {model}", inputError: true);
        }
        else
        {
            Fail($"no device said which model it serves within {ModelCheckWait.TotalSeconds:F0} s");
        }
    }

    private void HandleBatchCompleted(BatchCompleted completed)
    {
        var device = Sender;
        var scheduler = _scheduler!;
        if (!scheduler.Completed(device, completed.BatchIndex))
        {
            // A late duplicate (the batch was re-sent and answered elsewhere): its results are ours to drop.
            completed.Results.Dispose();
            Send(device);
            return;
        }

        var batch = scheduler.Batches[completed.BatchIndex];
        var returned = completed.Results.Count;
        if (returned != batch.Size)
        {
            completed.Results.Dispose();
            Fail($"a device returned {returned} result rows for a batch of {batch.Size}");
            return;
        }

        // Padding dropped; the client gets its own copy of what it streams (it may dispose it at once).
        var rows = completed.Results.Take(batch.Count);
        var streamed = _job.StreamResults && batch.Count > 0 ? rows.Clone() : null;
        try
        {
            _results!.Add(batch.Start, rows);
        }
        catch (ArgumentException e)
        {
            streamed?.Dispose();
            Fail(e.Message);
            return;
        }

        if (_usage.TryGetValue(device, out var usage))
        {
            _usage[device] = usage with { Batches = usage.Batches + 1, Rows = usage.Rows + batch.Count, Busy = usage.Busy + completed.Busy };
        }

        if (batch.Count > 0)
        {
            ToClient(new RowsCompleted(_job.JobId, batch.Start, batch.Count, streamed, _results!.Done, _rows));
        }

        if (!CompleteIfDone())
        {
            Send(device);
        }
    }

    private void HandleBatchFailed(BatchFailed failed)
    {
        if (!failed.Retryable)
        {
            _scheduler!.Completed(Sender, failed.BatchIndex);
            Fail(failed.Reason, inputError: true);
            return;
        }

        Apply(_scheduler!.Failed(Sender, failed.BatchIndex, failed.Reason));
    }

    private void HandleDeviceStopped(IActorRef device)
    {
        if (_scheduler is null)
        {
            _candidates.Remove(device);
            _serving.Remove(device);
            if (_asked.Remove(device) && _asked.Count == 0 && !_ended && _job.Options.Model is not null && !_job.InputOnRequest)
            {
                StartOnServing();
            }

            return;
        }

        _asked.Remove(device);
        if (_scheduler.Stopped(device) is not { } lost)
        {
            return;
        }

        _log.Warning("job {0}: device {1} stopped; re-sending its {2} batches", _job.JobId, device.Path, lost.Batches);
        if (lost.NoDevicesLeft)
        {
            Fail("every device stopped");
            return;
        }

        foreach (var retry in lost.Retries)
        {
            Report(retry);
        }

        if (!CompleteIfDone())
        {
            Send(_scheduler.NextForAll());
        }
    }

    private void HandleAddDevice(IActorRef device)
    {
        if (_scheduler is null)
        {
            if (!_candidates.Contains(device))
            {
                _candidates.Add(device);
                if (_job.Options.Model is not null && _asked.Count > 0)
                {
                    AskModel(device);
                }
            }

            return;
        }

        if (_scheduler.Uses(device) || _asked.Contains(device))
        {
            return;
        }

        // A device that comes later is asked what it serves too, and joins once it answers with the job's model.
        if (_job.Options.Model is not null)
        {
            AskModel(device);
            return;
        }

        JoinLate(device);
    }

    private void JoinLate(IActorRef device)
    {
        Context.Watch(device);
        _scheduler!.Join(device);
        _usage.TryAdd(device, new DeviceShare(0, 0, TimeSpan.Zero));
        Send(device);
    }

    // What the scheduler made of a failure: logged, a failed row reported, then whatever can run now is sent.
    private void Apply(BatchScheduler<IActorRef>.Retry retry)
    {
        if (retry.Kind == RetryKind.None)
        {
            return;
        }

        Report(retry);
        if (!CompleteIfDone())
        {
            Send(_scheduler!.NextForAll());
        }
    }

    private void Report(BatchScheduler<IActorRef>.Retry retry)
    {
        var batch = _scheduler!.Batches[retry.Batch];
        if (retry.Kind is RetryKind.Queued or RetryKind.Split)
        {
            JobMetrics.Retried(batch.Count);
        }

        switch (retry.Kind)
        {
            case RetryKind.Split when batch.Count > 1:
                _log.Warning("job {0}: rows {1}..{2} {3}; trying each half alone", _job.JobId, batch.Start, batch.Start + batch.Count - 1, retry.Reason);
                break;
            case RetryKind.RowFailed:
                _log.Warning("job {0}: row {1} {2}; reported failed", _job.JobId, retry.FailedRow, retry.Reason);
                JobMetrics.Failed();
                _results!.Fail(retry.FailedRow!.Value, retry.Reason);
                ToClient(new RowsFailed(_job.JobId, [retry.FailedRow.Value], retry.Reason, _results.Done, _rows));
                break;
        }
    }

    private bool CompleteIfDone()
    {
        if (!_scheduler!.Done)
        {
            return false;
        }

        if (_results!.Failures.Count == _rows)
        {
            var (row, error) = _results.Failures[0];
            Fail($"every row failed; row {row}: {error}");
        }
        else
        {
            Complete();
        }

        return true;
    }

    private void Send(IActorRef device) => Send(_scheduler!.Next(device).Select(batch => (device, batch)).ToList());

    private void Send(IReadOnlyList<(IActorRef Device, int Batch)> batches)
    {
        foreach (var (device, index) in batches)
        {
            var batch = _scheduler!.Batches[index];

            // The device owns (and disposes) what it is sent: views of the input, tensors in a list cloned. A batch lost
            // on the way times out and goes to another device like any batch that is not answered.
            var rows = _job.Input.Cut(batch.Start, batch.Count, batch.Padding);
            Transport.Send(Context.System, device, new RunBatch(_job.JobId, index, rows, _span?.Id), Self);
            var attempt = _scheduler.Attempt(index);
            Timers.StartSingleTimer((index, attempt), new BatchTimedOut(index, attempt), _job.Options.BatchTimeout);
        }
    }

    private void Complete()
    {
        var results = _results?.Join();
        var failed = _results?.Failures.Select(f => new RowFailure(f.Row, f.Error)).ToList() ?? [];
        var devices = _usage.ToDictionary(pair => DeviceLabel(pair.Key), pair => pair.Value);
        Ending();
        ToClient(new JobCompleted(_job.JobId, results, new JobStatistics(_clock.Elapsed, devices, _scheduler?.Resent ?? 0)) { FailedRows = failed });
        _ended = true;
        Context.Stop(Self);
    }

    // A local device by its actor name (device-0); one on another node with its node's address in front.
    private static string DeviceLabel(IActorRef device) =>
        device.Path.Address.HasLocalScope ? device.Path.Name : $"{device.Path.Address.Host}:{device.Path.Address.Port}/{device.Path.Name}";

    private static string Describe(Exception e) => $"{e.GetType().Name}: {e.Message.Split('\n', 2)[0]}";

    private void Fail(string reason, bool inputError = false)
    {
        if (_ended)
        {
            return;
        }

        _ended = true;
        _failure = reason;
        DropOnDevices();
        Ending();
        ToClient(new JobFailed(_job.JobId, reason, inputError));
        Context.Stop(Self);
    }

    private void DropOnDevices()
    {
        foreach (var device in _scheduler?.Devices ?? [])
        {
            device.Tell(new DropJob(_job.JobId));
        }
    }

    // The parent hears it first: a client that submits the same id again once told the job ended finds the id free.
    private void Ending() => Context.Parent.Tell(new JobEnding(_job.JobId), Self);

    // Everything for the client takes one way (the data plane when it is on another node that has one), so it keeps its order.
    private void ToClient(object message) => Transport.Send(Context.System, _job.ReplyTo, message, Self);

    private sealed record BatchTimedOut(int Batch, int Attempt);

    /// <summary>Told to the job's parent just before the job's last message to its client (completed or failed).</summary>
    public sealed record JobEnding(string JobId);

    private sealed class InputTimedOut
    {
        public static readonly InputTimedOut Instance = new();
    }

    private sealed class ModelCheckTimedOut
    {
        public static readonly ModelCheckTimedOut Instance = new();
    }
}
