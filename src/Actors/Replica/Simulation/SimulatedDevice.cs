using Akka.Actor;
using DistributedInference.Actors.Kernel.Membership;
using DistributedInference.Actors.Replica;

namespace DistributedInference.Actors.Replica.Simulation;

/// <summary>
/// A device actor double for TestKit simulations: speaks the device protocol, "computes" a batch by waiting its
/// latency on a .NET timer (no thread is blocked; Akka's scheduler ticks every 10 ms and would add up to a tick to every
/// batch), runs one batch at a time, and injects failures on request. It records
/// when each batch ran, so tests can measure utilisation.
/// </summary>
public sealed class SimulatedDevice : MembersOnlyActor
{
    private readonly string _name;
    private readonly SimulatedDeviceOptions _options;
    private readonly Queue<(RunBatch Batch, IActorRef ReplyTo)> _queue = new();
    private readonly List<BatchSpan> _spans = [];
    private (RunBatch Batch, IActorRef ReplyTo, DateTime Started)? _running;
    private int _started;
    private TimeSpan _busy;

    public SimulatedDevice(string name, SimulatedDeviceOptions options)
    {
        _name = name;
        _options = options;
        Receive<RunBatch>(HandleRunBatch);
        Receive<Finished>(_ => HandleFinished());
        Receive<DropJob>(HandleDropJob);
        Receive<GetDeviceStatus>(_ => Sender.Tell(new DeviceStatus(_name, _options.Spec, _options.Spec?.On(_name) ?? "simulated", _queue.Count, _busy, _spans.Count)));
        Receive<GetBatchSpans>(_ => Sender.Tell(_spans.ToList()));
    }

    public static Props Props(string name, SimulatedDeviceOptions? options = null) =>
        Akka.Actor.Props.Create(() => new SimulatedDevice(name, options ?? new SimulatedDeviceOptions()));

    private void HandleRunBatch(RunBatch batch)
    {
        _queue.Enqueue((batch, Sender));
        StartNext();
    }

    private void StartNext()
    {
        if (_running is not null || !_queue.TryDequeue(out var next))
        {
            return;
        }

        _started++;
        if (_options.StopAtBatch == _started)
        {
            next.Batch.Rows.Dispose();
            Context.Stop(Self);
            return;
        }

        _running = (next.Batch, next.ReplyTo, DateTime.UtcNow);
        var rows = next.Batch.Rows.Count;
        Task.Delay(_options.BatchLatency + (_options.RowLatency * rows)).PipeTo(Self, success: () => Finished.Instance);
    }

    private void HandleFinished()
    {
        var (batch, replyTo, started) = _running!.Value;
        _running = null;
        var busy = DateTime.UtcNow - started;
        _busy += busy;
        _spans.Add(new BatchSpan(batch.JobId, batch.BatchIndex, started, started + busy));
        if (_options.FailingBatches.Contains(_started))
        {
            batch.Rows.Dispose();
            replyTo.Tell(new BatchFailed(batch.JobId, batch.BatchIndex, $"{_name}: injected failure", Retryable: true));
        }
        else
        {
            // Like a device actor: it owns the rows it was sent, and frees what the computation did not hand back.
            var results = _options.Compute(batch.Rows.Value);
            batch.Rows.DisposeExcept(results);
            replyTo.Tell(new BatchCompleted(batch.JobId, batch.BatchIndex, Kernel.Rows.RowBatch.From(results), busy));
        }

        StartNext();
    }

    private void HandleDropJob(DropJob drop)
    {
        foreach (var (batch, _) in _queue.Where(item => item.Batch.JobId == drop.JobId))
        {
            batch.Rows.Dispose();
        }

        _queue.RemoveWhere(item => item.Batch.JobId == drop.JobId);
    }

    protected override void PostStop()
    {
        foreach (var (batch, _) in _queue)
        {
            batch.Rows.Dispose();
        }

        if (_running is { } running)
        {
            running.Batch.Rows.Dispose();
        }
    }

    private sealed class Finished
    {
        public static readonly Finished Instance = new();
    }
}

/// <summary>Asks a simulated device when it ran each batch: answered with a list of <see cref="BatchSpan"/>.</summary>
public sealed record GetBatchSpans
{
    public static readonly GetBatchSpans Instance = new();
}

/// <summary>When a simulated device ran one batch.</summary>
public sealed record BatchSpan(string JobId, int BatchIndex, DateTime Started, DateTime Finished);
