using Akka.Actor;
using DistributedInference.Actors.Kernel.Membership;

namespace DistributedInference.Actors.Replica;

/// <summary>
/// Replica mode's front door: knows the device actors (and watches them), accepts jobs, and runs each in a child
/// <see cref="ReplicaJob"/>; devices that join later are offered to running jobs too. It remembers each device's
/// node's data-plane endpoint (<see cref="AddDevice.DataPlane"/>) for its jobs, which send batches there. A job that throws is stopped,
/// never restarted (<see cref="Kernel.Supervision.Supervision.StopOnFailure"/>): it tells its client the job failed.
/// </summary>
public sealed class ReplicaSplitter : MembersOnlyActor
{
    public const string ActorName = "replica-splitter";

    private readonly List<IActorRef> _devices = [];
    private readonly Dictionary<string, IActorRef> _jobs = new(StringComparer.Ordinal);
    private long _jobCounter;

    public ReplicaSplitter(IEnumerable<IActorRef> devices)
    {
        foreach (var device in devices)
        {
            HandleAddDevice(new AddDevice(device));
        }

        Receive<SubmitJob>(HandleSubmitJob);
        Receive<CancelJob>(HandleCancelJob);
        Receive<AddDevice>(HandleAddDevice);
        Receive<RemoveDevice>(HandleRemoveDevice);
        Receive<GetDevices>(_ => Sender.Tell(new DeviceList(_devices.ToList())));
        Receive<Terminated>(HandleTerminated);
        Receive<JobEnded>(ended => Forget(ended.JobId, ended.Job));
        Receive<ReplicaJob.JobEnding>(ending => Forget(ending.JobId, Sender));
    }

    public static Props Props(IEnumerable<IActorRef> devices) => Akka.Actor.Props.Create(() => new ReplicaSplitter(devices.ToList()));

    protected override SupervisorStrategy SupervisorStrategy() => Kernel.Supervision.Supervision.StopOnFailure();

    // Devices are added and removed only by this node's device registry (an actor): one without a sender came from elsewhere.
    protected override bool SenderRequired(object message) => message is AddDevice or RemoveDevice;

    private void HandleSubmitJob(SubmitJob job)
    {
        if (_jobs.ContainsKey(job.JobId))
        {
            job.Input.Dispose();
            job.ReplyTo.Tell(new JobFailed(job.JobId, $"a job with id {job.JobId} is already running"));
            return;
        }

        var child = Context.ActorOf(ReplicaJob.Props(job, _devices.ToList()), $"job-{++_jobCounter}");
        Context.WatchWith(child, new JobEnded(job.JobId, child));
        _jobs[job.JobId] = child;
    }

    private void HandleCancelJob(CancelJob cancel)
    {
        if (_jobs.TryGetValue(cancel.JobId, out var job))
        {
            job.Forward(cancel);
        }
    }

    private void HandleAddDevice(AddDevice add)
    {
        if (_devices.Contains(add.Device))
        {
            return;
        }

        _devices.Add(add.Device);
        Context.Watch(add.Device);
        foreach (var job in _jobs.Values)
        {
            job.Tell(add);
        }
    }

    private void HandleRemoveDevice(RemoveDevice remove)
    {
        if (!_devices.Remove(remove.Device))
        {
            return;
        }

        Context.Unwatch(remove.Device);
        foreach (var job in _jobs.Values)
        {
            job.Tell(remove);
        }
    }

    private void HandleTerminated(Terminated terminated)
    {
        _devices.Remove(terminated.ActorRef);
    }

    // Only the job that ended: a later job of the same id may run already.
    private void Forget(string jobId, IActorRef job)
    {
        if (_jobs.TryGetValue(jobId, out var running) && running.Equals(job))
        {
            _jobs.Remove(jobId);
        }
    }

    private sealed record JobEnded(string JobId, IActorRef Job);
}
