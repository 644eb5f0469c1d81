using System.Diagnostics;
using Akka.Actor;
using Akka.Event;
using DistributedInference.Actors.Kernel.Membership;
using DistributedInference.Actors.Kernel.Rows;
using DistributedInference.Models;
using DistributedInference.Models.Tasks;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Replica;

/// <summary>
/// One job, from split to gather (a short-lived child of the splitter). Rows are split across the devices by
/// accelerate's rule, each share is cut into batches of at most max_batch_size, and each device keeps two batches
/// in flight so it never waits for the next one. A device that runs out of its own batches takes the last queued
/// batch of the busiest device. A batch whose device stops, fails or times out goes to another device (a device that
/// timed out gets no new work until it answers again); a late duplicate answer is ignored, so every row comes back
/// exactly once. A batch that fails on <see cref="JobOptions.MaxAttempts"/> attempts is split in two and each half
/// retried, down to single rows: a row that still fails is reported alone (<see cref="RowsFailed"/>, and in
/// <see cref="JobCompleted.FailedRows"/>) and every other row is answered; only when every row fails does the job
/// fail. Results are gathered in input order with the padding dropped (a failed row's place holds zeros, or null in a
/// list). A job that names its model
/// (<see cref="JobOptions.Model"/>) first asks each device what it serves and runs only on those serving it (devices
/// that come later too); none: the job fails as an input error, naming what the devices serve.
/// A job is never restarted: if it throws, it stops (its parent's strategy is
/// <see cref="Kernel.Supervision.Supervision.StopOnFailure"/>, and a restart its parent asks for anyway only stops it), and the
/// client gets one <see cref="JobFailed"/> naming the error; nothing it already sent is sent again.
/// User data never rides in a control message: a job submitted with <see cref="SubmitJob.InputOnRequest"/> first asks
/// its client for the input (<see cref="FetchJobInput"/>; it comes by the data plane, and the job fails when it does not
/// come within <c>distributed-inference.submit-timeout</c>), and batches for a device on another node go by the data
/// plane of that device's node (<see cref="AddDevice.DataPlane"/>); local devices are told directly.
/// </summary>
public sealed class ReplicaJob : MembersOnlyActor, IWithTimers
{
    private const int InFlightPerDevice = 2;
    private static readonly TimeSpan ModelCheckTimeout = TimeSpan.FromSeconds(30);

    private SubmitJob _job;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Dictionary<IActorRef, LinkedList<int>> _queued = new();
    private readonly Dictionary<IActorRef, HashSet<int>> _inFlight = new();
    private readonly Dictionary<IActorRef, DeviceUsage> _usage = new();
    private readonly HashSet<IActorRef> _unresponsive = [];
    private Tensor? _output;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly IReadOnlyList<IActorRef> _initialDevices;
    private List<Batch> _batches = [];
    private readonly List<object?> _results = [];
    private readonly List<int> _attempts = [];
    private readonly List<RowFailure> _failedRows = [];
    private int _rows;
    private int _rowsDone;
    private int _batchesDone;
    private int _resent;
    private bool _started;
    private bool _ended;
    private Exception? _crash;
    private readonly HashSet<IActorRef> _asked = [];
    private readonly List<IActorRef> _serving = [];
    private readonly SortedSet<string> _otherModels = new(StringComparer.Ordinal);

    public ReplicaJob(SubmitJob job, IReadOnlyList<IActorRef> devices)
    {
        _job = job;
        _initialDevices = devices;
        Receive<BatchCompleted>(c => c.JobId == _job.JobId, HandleBatchCompleted);
        Receive<BatchFailed>(f => f.JobId == _job.JobId, HandleBatchFailed);
        Receive<BatchTimedOut>(HandleBatchTimedOut);
        Receive<Terminated>(t => HandleDeviceStopped(t.ActorRef));
        Receive<AddDevice>(a => HandleAddDevice(a.Device));
        Receive<JobInput>(input => input.JobId == _job.JobId && _job.InputOnRequest, HandleJobInput);
        Receive<InputTimedOut>(_ =>
        {
            if (_job.InputOnRequest)
            {
                Fail(FetchJobInput.NotSentWithin(InputTimeout));
            }
        });
        Receive<RemoveDevice>(r =>
        {
            Context.Unwatch(r.Device);
            HandleDeviceStopped(r.Device);
        });
        Receive<CancelJob>(_ => Fail("cancelled"));
        Receive<DeviceStatus>(HandleDeviceStatus);
        Receive<ModelCheckTimedOut>(_ =>
        {
            if (!_started)
            {
                _asked.Clear();
                StartOnServing();
            }
        });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    // How long devices may take to say what they serve (a busy device answers between two batches).
    private TimeSpan ModelCheckWait => ModelCheckTimeout < _job.Options.BatchTimeout ? ModelCheckTimeout : _job.Options.BatchTimeout;

    private TimeSpan InputTimeout => Kernel.Settings.DistributedInferenceSettings.Get(Context.System).SubmitTimeout;

    /// <param name="job">The job; with <see cref="SubmitJob.InputOnRequest"/> its input is fetched from the client first.</param>
    /// <param name="devices">The devices it may use.</param>
    public static Props Props(SubmitJob job, IReadOnlyList<IActorRef> devices) =>
        Akka.Actor.Props.Create(() => new ReplicaJob(job, devices)).WithDispatcher(Kernel.Settings.DistributedInferenceConfig.ComputeDispatcher);

    protected override void PreStart()
    {
        if (_job.InputOnRequest)
        {
            // The input stays with the client until asked for, and comes by the data plane (never in a control message).
            _job.ReplyTo.Tell(new FetchJobInput(_job.JobId, Self), Self);
            Timers.StartSingleTimer(InputTimedOut.Instance, InputTimedOut.Instance, InputTimeout);
            return;
        }

        BeginOrFail();
    }

    private void HandleJobInput(JobInput input)
    {
        Timers.Cancel(InputTimedOut.Instance);
        _job = _job with { Input = input.Input, InputOnRequest = false };
        BeginOrFail();
    }

    private void BeginOrFail()
    {
        try
        {
            Begin();
        }
        catch (Exception e)
        {
            _crash = e;
            _log.Error(e, "job {0}: could not start", _job.JobId);
            Fail($"the job could not start: {Describe(e)}", inputError: e is InvalidInputException);
        }
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
        // What the job still holds (results of a job that failed; nothing once the client was handed its results).
        foreach (var kept in _results)
        {
            RowOwnership.Dispose(kept);
        }

        _output?.Dispose();

        // The job owns its input (RowPayload's rule); the batches it sent have handles of their own.
        _job.Input.Dispose();
        if (_ended)
        {
            return;
        }

        _ended = true;
        foreach (var device in _queued.Keys)
        {
            device.Tell(new DropJob(_job.JobId));
        }

        ToClient(new JobFailed(_job.JobId, _crash is null ? "the job's actor was stopped before the job ended" : $"the job's actor failed: {Describe(_crash)}"));
    }

    private static string Describe(Exception e) => $"{e.GetType().Name}: {e.Message.Split('\n', 2)[0]}";

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

        if (_job.Options.MaxBatchSize <= 0)
        {
            Fail($"max_batch_size must be positive, got {_job.Options.MaxBatchSize}", inputError: true);
            return;
        }

        if (_rows == 0)
        {
            ToClient(new JobAccepted(_job.JobId, 0, 0, _initialDevices.Count));
            Complete();
            return;
        }

        if (_initialDevices.Count == 0)
        {
            Fail("no devices to run on");
            return;
        }

        if (_job.Options.Model is null)
        {
            Start(_initialDevices);
            return;
        }

        // A job for a named model first asks every device what it serves, and runs only on those serving that model.
        foreach (var device in _initialDevices)
        {
            AskModel(device);
        }

        Timers.StartSingleTimer(ModelCheckTimedOut.Instance, ModelCheckTimedOut.Instance, ModelCheckWait);
    }

    private void Start(IReadOnlyList<IActorRef> devices)
    {
        _started = true;
        Timers.Cancel(ModelCheckTimedOut.Instance);
        var shares = Share.Plan(_rows, devices.Count, _job.Options.ApplyPadding);
        _batches = shares.SelectMany(share => Cut(share, _job.Options.MaxBatchSize)).ToList();
        _results.AddRange(_batches.Select(_ => (object?)null));
        _attempts.AddRange(_batches.Select(_ => 0));
        foreach (var device in devices)
        {
            Join(device);
        }

        var index = 0;
        foreach (var share in shares)
        {
            foreach (var _ in Cut(share, _job.Options.MaxBatchSize))
            {
                _queued[devices[share.Rank]].AddLast(index++);
            }
        }

        ToClient(new JobAccepted(_job.JobId, _rows, _batches.Count, devices.Count));
        DispatchAll();
    }

    private void AskModel(IActorRef device)
    {
        if (_asked.Add(device))
        {
            Context.Watch(device);
            device.Tell(GetDeviceStatus.Instance);
        }
    }

    private void HandleDeviceStatus(DeviceStatus status)
    {
        var device = Sender;
        if (!_asked.Remove(device))
        {
            return;
        }

        if (!ModelIdentity.Serves(status.Model, _job.Options.Model!))
        {
            _log.Info("job {0}: device {1} serves {2}, not {3}; not used", _job.JobId, device.Path, status.Model, _job.Options.Model);
            _otherModels.Add(status.Model);
            if (!_started)
            {
                Context.Unwatch(device);
            }
        }
        else if (_started)
        {
            JoinLate(device);
            return;
        }
        else
        {
            _serving.Add(device);
        }

        if (!_started && _asked.Count == 0)
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

    private static IEnumerable<Batch> Cut(Share share, int maxBatchSize)
    {
        for (var offset = 0; offset < share.PaddedCount; offset += maxBatchSize)
        {
            var size = Math.Min(maxBatchSize, share.PaddedCount - offset);
            var real = Math.Clamp(share.Count - offset, 0, size);
            yield return new Batch(share.Start + Math.Min(offset, share.Count), real, size - real);
        }
    }

    private void HandleBatchCompleted(BatchCompleted completed)
    {
        var device = Sender;
        _unresponsive.Remove(device);
        _inFlight.GetValueOrDefault(device)?.Remove(completed.BatchIndex);
        var batch = _batches[completed.BatchIndex];
        if (_results[completed.BatchIndex] is not null)
        {
            // A late duplicate (the batch was re-sent and answered elsewhere): its results are ours to drop.
            completed.Results.Dispose();
        }
        else
        {
            var returned = completed.Results.Count;
            if (returned != batch.Count + batch.Padding)
            {
                completed.Results.Dispose();
                Fail($"a device returned {returned} result rows for a batch of {batch.Count + batch.Padding}");
                return;
            }

            var kept = Keep(completed.Results.Value, batch);
            if (kept is null)
            {
                return;
            }

            _results[completed.BatchIndex] = kept;
            _batchesDone++;
            _rowsDone += batch.Count;
            if (_usage.TryGetValue(device, out var usage))
            {
                _usage[device] = usage with { Batches = usage.Batches + 1, Rows = usage.Rows + batch.Count, Busy = usage.Busy + completed.Busy };
            }

            if (batch.Count > 0)
            {
                // The client gets its own copy (it may dispose it at once); the job keeps its own for the final join.
                ToClient(new RowsCompleted(_job.JobId, batch.Start, batch.Count, _job.StreamResults ? RowPayload.From(RowOwnership.Clone(kept)!) : null, _rowsDone, _rows));
            }

            if (CompleteIfDone())
            {
                return;
            }
        }

        Dispatch(device);
    }

    private void HandleBatchFailed(BatchFailed failed)
    {
        _unresponsive.Remove(Sender);
        _inFlight.GetValueOrDefault(Sender)?.Remove(failed.BatchIndex);
        if (_results[failed.BatchIndex] is not null)
        {
            return;
        }

        if (!failed.Retryable)
        {
            Fail(failed.Reason, inputError: true);
            return;
        }

        Retry(failed.BatchIndex, Sender, failed.Reason);
    }

    private void HandleBatchTimedOut(BatchTimedOut timedOut)
    {
        if (_results[timedOut.BatchIndex] is not null || _attempts[timedOut.BatchIndex] != timedOut.Attempt)
        {
            return;
        }

        // A device that does not answer in time gets no new work until it answers again; its queue moves on.
        var device = _inFlight.FirstOrDefault(pair => pair.Value.Contains(timedOut.BatchIndex)).Key;
        if (device is not null)
        {
            _inFlight[device].Remove(timedOut.BatchIndex);
            _unresponsive.Add(device);
            var queued = _queued[device].ToList();
            _queued[device].Clear();
            foreach (var index in queued)
            {
                LeastLoaded(avoid: device).AddLast(index);
            }
        }

        Retry(timedOut.BatchIndex, device, $"no answer within {_job.Options.BatchTimeout}");
    }

    private void HandleDeviceStopped(IActorRef device)
    {
        if (!_started)
        {
            _serving.Remove(device);
            if (_asked.Remove(device) && _asked.Count == 0)
            {
                StartOnServing();
            }

            return;
        }

        _asked.Remove(device);
        _unresponsive.Remove(device);
        if (!_queued.Remove(device, out var queued))
        {
            return;
        }

        _inFlight.Remove(device, out var lost);
        _log.Warning("job {0}: device {1} stopped; re-sending its {2} batches", _job.JobId, device.Path, queued.Count + (lost?.Count ?? 0));
        if (_queued.Count == 0)
        {
            Fail("every device stopped");
            return;
        }

        foreach (var index in queued)
        {
            LeastLoaded(avoid: null).AddLast(index);
        }

        foreach (var index in lost ?? [])
        {
            if (_results[index] is null)
            {
                Retry(index, null, "its device stopped", dispatch: false);
            }
        }

        DispatchAll();
    }

    private void HandleAddDevice(IActorRef device)
    {
        if (_queued.ContainsKey(device) || _asked.Contains(device) || _serving.Contains(device))
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
        if (_batches.Count == 0)
        {
            return;
        }

        Join(device);
        Dispatch(device);
    }

    private void Join(IActorRef device)
    {
        Context.Watch(device);
        _queued[device] = new LinkedList<int>();
        _inFlight[device] = [];
        _usage.TryAdd(device, new DeviceUsage(0, 0, TimeSpan.Zero));
    }

    private void Retry(int index, IActorRef? failedOn, string reason, bool dispatch = true)
    {
        if (_ended)
        {
            return;
        }

        if (_attempts[index] >= _job.Options.MaxAttempts)
        {
            Isolate(index, $"failed {_attempts[index]} times; last: {reason}");
            if (dispatch && !_ended)
            {
                DispatchAll();
            }

            return;
        }

        _resent++;
        LeastLoaded(avoid: failedOn).AddFirst(index);
        if (dispatch)
        {
            DispatchAll();
        }
    }

    // A batch that failed on every attempt: its halves are tried on their own (padding dropped), down to one row, which
    // is then reported failed alone. The batch itself is settled: a late answer for it is ignored.
    private void Isolate(int index, string error)
    {
        var batch = _batches[index];
        _results[index] = Settled.Instance;
        _batchesDone++;
        if (batch.Count > 1)
        {
            var half = batch.Count / 2;
            _log.Warning("job {0}: rows {1}..{2} {3}; trying each half alone", _job.JobId, batch.Start, batch.Start + batch.Count - 1, error);
            foreach (var part in new[] { new Batch(batch.Start + half, batch.Count - half, 0), new Batch(batch.Start, half, 0) })
            {
                _batches.Add(part);
                _results.Add(null);
                _attempts.Add(0);
                LeastLoaded(avoid: null).AddFirst(_batches.Count - 1);
            }

            return;
        }

        if (batch.Count == 1)
        {
            _log.Warning("job {0}: row {1} {2}; reported failed", _job.JobId, batch.Start, error);
            _failedRows.Add(new RowFailure(batch.Start, error));
            _rowsDone++;
            ToClient(new RowsFailed(_job.JobId, [batch.Start], error, _rowsDone, _rows));
        }

        CompleteIfDone();
    }

    private bool CompleteIfDone()
    {
        if (_batchesDone < _batches.Count)
        {
            return false;
        }

        if (_failedRows.Count == _rows)
        {
            var first = _failedRows.MinBy(f => f.Index)!;
            Fail($"every row failed; row {first.Index}: {first.Error}");
        }
        else
        {
            Complete();
        }

        return true;
    }

    private LinkedList<int> LeastLoaded(IActorRef? avoid)
    {
        var others = _queued.Keys.Where(d => !d.Equals(avoid) && !_unresponsive.Contains(d)).ToList();
        var pool = others.Count > 0 ? others : _queued.Keys.ToList();
        return _queued[pool.MinBy(d => _queued[d].Count + _inFlight[d].Count)!];
    }

    private void DispatchAll()
    {
        foreach (var device in _queued.Keys.ToList())
        {
            Dispatch(device);
        }
    }

    private void Dispatch(IActorRef device)
    {
        if (!_queued.TryGetValue(device, out var own) || _unresponsive.Contains(device))
        {
            return;
        }

        while (_inFlight[device].Count < InFlightPerDevice && TakeNext(device, own) is { } index)
        {
            if (_results[index] is not null)
            {
                continue;
            }

            var batch = _batches[index];
            // The device owns (and disposes) what it is sent: views of the input, tensors in a list cloned.
            var rows = _job.Input.Cut(batch.Start, batch.Count, batch.Padding);
            _attempts[index]++;
            _inFlight[device].Add(index);

            // Rows are user data: to a device on another node they go by the data plane (a batch can outgrow Akka's
            // frame); one lost on the way times out and goes to another device like any batch that is not answered.
            Kernel.Transport.Transport.Send(Context.System, device, new RunBatch(_job.JobId, index, rows), Self);
            Timers.StartSingleTimer((index, _attempts[index]), new BatchTimedOut(index, _attempts[index]), _job.Options.BatchTimeout);
        }
    }

    // The device's own next batch, else the last queued batch of the device with the longest queue.
    private int? TakeNext(IActorRef device, LinkedList<int> own)
    {
        var source = own.Count > 0 ? own : _queued.Values.MaxBy(q => q.Count);
        if (source is null || source.Count == 0)
        {
            return null;
        }

        var node = ReferenceEquals(source, own) ? source.First! : source.Last!;
        source.Remove(node);
        return node.Value;
    }

    // The rows of a batch's results to keep (its padding dropped). When results are not streamed and are tensors, they
    // are copied straight into the job's output as they arrive and freed, so no second copy of every result waits
    // for a join at the end. Null when the results do not fit the output (the job has failed).
    private object? Keep(object results, Batch batch)
    {
        if (_job.StreamResults || results is not Tensor tensor)
        {
            return RowOwnership.Take(results, batch.Count);
        }

        using (tensor)
        {
            _output ??= empty([_rows, .. tensor.shape.Skip(1)], tensor.dtype);
            if (!_output.shape.Skip(1).SequenceEqual(tensor.shape.Skip(1)) || _output.dtype != tensor.dtype)
            {
                Fail($"batch results of different shapes cannot be joined: [{string.Join(", ", tensor.shape)}] {tensor.dtype} after [{string.Join(", ", _output.shape)}] {_output.dtype}");
                return null;
            }

            if (batch.Count > 0)
            {
                using var rows = tensor.narrow(0, 0, batch.Count);
                using var target = _output.narrow(0, batch.Start, batch.Count);
                target.copy_(rows);
            }

            return CopiedIntoOutput.Instance;
        }
    }

    private void Complete()
    {
        object? results = _output;
        foreach (var failed in _output is null ? [] : _failedRows)
        {
            using var row = _output!.narrow(0, failed.Index, 1);
            row.zero_();
        }

        if (results is null)
        {
            var parts = _batches.Select((batch, i) => (batch.Start, Count: batch.Count, Result: _results.Count > i ? _results[i] : null))
                .Where(p => p.Count > 0 && p.Result is not null and not Settled).ToList();
            if (parts.Count > 0)
            {
                // A failed row's place is filled with a blank row shaped like the others, so results stay in input order.
                parts.AddRange(_failedRows.Select(f => (f.Index, 1, (object?)Rows.Blank(parts[0].Result!, 1))));
            }

            var ordered = parts.OrderBy(p => p.Start).Select(p => p.Result!).ToList();
            results = parts.Count == 0 ? null : Rows.Concat(ordered);

            // The parts were joined into new tensors (a list's items are handed on as they are).
            RowOwnership.DisposeExcept(ordered, results);
            _results.Clear();
        }

        var devices = _usage.ToDictionary(pair => DeviceLabel(pair.Key), pair => new DeviceShare(pair.Value.Batches, pair.Value.Rows, pair.Value.Busy));
        ToClient(new JobCompleted(_job.JobId, RowPayload.FromNullable(results), new JobStatistics(_clock.Elapsed, devices, _resent)) { FailedRows = _failedRows.OrderBy(f => f.Index).ToList() });
        _output = null;
        _ended = true;
        Context.Stop(Self);
    }

    // A local device by its actor name (device-0); one on another node with its node's address in front.
    private static string DeviceLabel(IActorRef device) =>
        device.Path.Address.HasLocalScope ? device.Path.Name : $"{device.Path.Address.Host}:{device.Path.Address.Port}/{device.Path.Name}";

    private void Fail(string reason, bool inputError = false)
    {
        if (_ended)
        {
            return;
        }

        _ended = true;
        foreach (var device in _queued.Keys)
        {
            device.Tell(new DropJob(_job.JobId));
        }

        ToClient(new JobFailed(_job.JobId, reason, inputError));
        Context.Stop(Self);
    }

    // Everything for the client takes one way (the data plane when it is on another node that has one), so it keeps its order.
    private void ToClient(object message) => Kernel.Transport.Transport.Send(Context.System, _job.ReplyTo, message, Self);

    private sealed record Batch(int Start, int Count, int Padding);

    private sealed class CopiedIntoOutput
    {
        public static readonly CopiedIntoOutput Instance = new();
    }

    // A batch that is over without results of its own: split into halves, or its one row failed.
    private sealed class Settled
    {
        public static readonly Settled Instance = new();
    }

    private sealed record BatchTimedOut(int BatchIndex, int Attempt);

    private sealed class InputTimedOut
    {
        public static readonly InputTimedOut Instance = new();
    }

    private sealed class ModelCheckTimedOut
    {
        public static readonly ModelCheckTimedOut Instance = new();
    }

    private sealed record DeviceUsage(int Batches, int Rows, TimeSpan Busy);
}
