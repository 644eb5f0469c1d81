using Akka.Actor;
using Akka.Cluster.Sharding;
using Akka.Event;
using DistributedInference.Actors.Cluster.Devices;
using DistributedInference.Actors.Kernel.Membership;
using DistributedInference.Actors.Kernel.Rows;
using DistributedInference.Actors.Replica;

namespace DistributedInference.Actors.Cluster.Jobs;

/// <summary>
/// The home of one replica job in the cluster: an entity of the job shard region (keyed by job id, on nodes with the
/// control role), so a job submitted through any node lands here, once. It owns the job: it runs it as its own child
/// (<see cref="ReplicaJob"/>, named <see cref="JobName"/>) on the devices its node's <see cref="DeviceRegistry"/> knows,
/// passes on every later change of those devices, relays the job's answers to the client, and keeps the outcome for
/// <c>keepFinishedFor</c> before passivating: a client that submits the same job id again (a retry after a lost
/// connection) is re-attached to the running job, or handed the outcome, instead of starting the work twice. The job
/// lives exactly as long as its coordinator: the region never passivates a coordinator on its own
/// (<see cref="JobSharding"/>), and a coordinator that stops anyway (its node leaves, a rebalance, a stop from
/// outside) stops its job with it, whose devices drop its queued batches; a client that submits again then starts the
/// job afresh at the new home. It watches its client: a client that stops before the job ends (cancelled, or its node
/// gone) cancels the job.
/// </summary>
public sealed class JobCoordinator : MembersOnlyActor, IWithTimers
{
    /// <summary>The name of the coordinator's child running its job.</summary>
    public const string JobName = "job";

    private readonly string _jobId;
    private readonly IActorRef _registry;
    private readonly TimeSpan _keepFinishedFor;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private IActorRef? _client;
    private JobAccepted? _accepted;
    private object? _outcome;
    private int _rowsDone;

    // The first submission until the job takes it (its input, once fetched, is the coordinator's until then).
    private SubmitJob? _pending;

    // The devices the job starts on (from the registry; null until it answered), then the job itself.
    private List<IActorRef>? _devices;
    private IActorRef? _job;

    /// <param name="jobId">The entity id: the job's id.</param>
    /// <param name="registry">This node's <see cref="DeviceRegistry"/>, which tells the devices the job may use.</param>
    /// <param name="keepFinishedFor">How long a finished job's outcome is kept for clients that submit it again.</param>
    public JobCoordinator(string jobId, IActorRef registry, TimeSpan keepFinishedFor)
    {
        _jobId = jobId;
        _registry = registry;
        _keepFinishedFor = keepFinishedFor;
        Receive<SubmitJob>(HandleSubmit);
        Receive<CancelJob>(HandleCancel);
        Receive<GetJobStatus>(_ => Sender.Tell(Status()));
        Receive<DeviceList>(_ => Sender.Equals(_registry), HandleDevices);
        Receive<AddDevice>(_ => Sender.Equals(_registry), add => Devices(add, add.Device, adding: true));
        Receive<RemoveDevice>(_ => Sender.Equals(_registry), remove => Devices(remove, remove.Device, adding: false));
        Receive<JobAccepted>(accepted =>
        {
            _accepted = accepted;
            ToClient(accepted);
        });
        Receive<RowsCompleted>(rows =>
        {
            _rowsDone = rows.RowsDone;
            ToClient(rows);
        });
        Receive<RowsFailed>(rows =>
        {
            _rowsDone = rows.RowsDone;
            ToClient(rows);
        });
        Receive<JobCompleted>(Finish);
        Receive<JobFailed>(Finish);

        // The job's own actor is this coordinator's only one: its end arrives as the job's last message.
        Receive<ReplicaJob.JobEnding>(_ => { });
        Receive<ReceiveTimeout>(_ => Context.Parent.Tell(new Passivate(PoisonPill.Instance)));
        Receive<Terminated>(HandleClientLost);
        Receive<JobInput>(input => input.JobId == _jobId && AwaitingInput, input =>
        {
            Timers.Cancel(InputTimedOut.Instance);
            _pending = _pending! with { Input = input.Input, InputOnRequest = false };
            StartIfReady();
        });

        // An input nobody asked for (a late answer to an ask already answered) is ours to release.
        Receive<JobInput>(input => input.Input.Dispose());
        Receive<InputTimedOut>(_ =>
        {
            if (AwaitingInput)
            {
                Finish(new JobFailed(_jobId, FetchJobInput.NotSentWithin(InputTimeout)));
            }
        });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    private bool AwaitingInput => _outcome is null && _pending is { InputOnRequest: true };

    private TimeSpan InputTimeout => Kernel.Settings.DistributedInferenceSettings.Get(Context.System).SubmitTimeout;

    public static Props Props(string jobId, IActorRef registry, TimeSpan keepFinishedFor) =>
        Akka.Actor.Props.Create(() => new JobCoordinator(jobId, registry, keepFinishedFor)).WithDispatcher(Kernel.Settings.DistributedInferenceConfig.ComputeDispatcher);

    // A job that throws is stopped, never restarted: it tells the coordinator it failed (see ReplicaJob).
    protected override SupervisorStrategy SupervisorStrategy() => Kernel.Supervision.Supervision.StopOnFailure();

    // A coordinator without a job (a status query or a cancel for an unknown id made it) passivates when idle.
    protected override void PreStart() => Context.SetReceiveTimeout(_keepFinishedFor);

    private void HandleSubmit(SubmitJob submit)
    {
        var first = _client is null && _pending is null && _job is null && _outcome is null;
        if (_client is not null && !_client.Equals(submit.ReplyTo))
        {
            Context.Unwatch(_client);
        }

        _client = submit.ReplyTo;
        if (_outcome is null)
        {
            Context.Watch(_client);
        }

        if (first)
        {
            _log.Info("job {0}: coordinated here, for {1}", _jobId, submit.ReplyTo.Path.Address);

            // From here until the job ends the coordinator lives (see JobSharding: the region never passivates by itself).
            Context.SetReceiveTimeout(null);
            _pending = submit with { ReplyTo = Self };
            _registry.Tell(SubscribeDevices.Instance);
            if (submit.InputOnRequest)
            {
                FetchInput();
                Timers.StartSingleTimer(InputTimedOut.Instance, InputTimedOut.Instance, InputTimeout);
            }

            return;
        }

        // A submission of a job that is here already runs on the first one's input: its own is released.
        submit.Input.Dispose();

        // The same submission again before its input came (the first ask may be lost): ask again.
        if (AwaitingInput)
        {
            FetchInput();
            return;
        }

        // The same job again: re-attach the caller instead of running it twice.
        if (_outcome is not null)
        {
            ToClient(ForClient(_outcome));
        }
        else if (_accepted is not null)
        {
            ToClient(_accepted);
        }
    }

    private void HandleDevices(DeviceList list)
    {
        _devices ??= list.Devices.ToList();
        StartIfReady();
    }

    // Before the job starts the coordinator keeps the registry's list up to date; then the job is told every change.
    private void Devices(object change, IActorRef device, bool adding)
    {
        if (_outcome is not null)
        {
            return;
        }

        if (_job is not null)
        {
            _job.Forward(change);
        }
        else if (_devices is not null)
        {
            _devices.Remove(device);
            if (adding)
            {
                _devices.Add(device);
            }
        }
    }

    // The job starts once it has its input and the registry has said which devices it may use.
    private void StartIfReady()
    {
        if (_outcome is not null || _job is not null || _pending is not { InputOnRequest: false } submit || _devices is null)
        {
            return;
        }

        _pending = null;
        _job = Context.ActorOf(ReplicaJob.Props(submit, _devices), JobName);
    }

    private void HandleCancel(CancelJob cancel)
    {
        if (_outcome is not null)
        {
            return;
        }

        _log.Info("job {0}: cancelled by its client", _jobId);
        Cancel();
    }

    // A running job stops and says so (JobFailed "cancelled"); one that has not started yet ends here.
    private void Cancel()
    {
        if (_job is not null)
        {
            _job.Tell(new CancelJob(_jobId));
        }
        else if (_pending is not null)
        {
            Finish(new JobFailed(_jobId, "cancelled"));
        }
    }

    // The input comes by the data plane, to this node's endpoint (through Akka where there is none).
    private void FetchInput() =>
        _client?.Tell(new FetchJobInput(_jobId, Self), Self);

    // The client stopped waiting (it was cancelled, or its node went away) before the job ended: nobody is left to take
    // the results, so the job stops, its queued and future batches with it.
    private void HandleClientLost(Terminated terminated)
    {
        if (_outcome is not null || !terminated.ActorRef.Equals(_client))
        {
            return;
        }

        _log.Info("job {0}: its client at {1} is gone; cancelling the job", _jobId, terminated.ActorRef.Path.Address);
        _client = null;
        Cancel();
    }

    private void Finish(object outcome)
    {
        if (_outcome is not null)
        {
            // The job ends once; anything after that is nobody's.
            (outcome as ICarriesRows)?.ReleaseRows();
            return;
        }

        if (_client is not null)
        {
            Context.Unwatch(_client);
        }

        Timers.Cancel(InputTimedOut.Instance);
        _pending?.Input.Dispose();
        _pending = null;
        _outcome = outcome;
        ToClient(ForClient(outcome));
        Context.SetReceiveTimeout(_keepFinishedFor);
    }

    // The coordinator keeps a finished job's results for a client that re-attaches: each client gets its own copy.
    private static object ForClient(object outcome) =>
        outcome is JobCompleted completed ? completed with { Results = completed.Results?.Clone() } : outcome;

    /// <inheritdoc />
    /// <remarks>The job, a child, has stopped already (its devices were told to drop its batches).</remarks>
    protected override void PostStop()
    {
        if (_outcome is null && (_job is not null || _pending is not null))
        {
            _log.Info("job {0}: its coordinator stopped before the job ended; the job stopped with it", _jobId);
        }

        _pending?.Input.Dispose();
        if (_outcome is JobCompleted completed)
        {
            completed.Results?.Dispose();
        }

        base.PostStop();
    }

    // Everything for the client takes one way (the data plane when it is on another node that has one), so it keeps its order.
    private void ToClient(object message)
    {
        if (_client is not null)
        {
            Kernel.Transport.Transport.Send(Context.System, _client, message, Self);
        }
        else
        {
            // Rows for a client that is gone are nobody's.
            (message as ICarriesRows)?.ReleaseRows();
        }
    }

    private sealed class InputTimedOut
    {
        public static readonly InputTimedOut Instance = new();
    }

    private JobStatus Status() => _outcome switch
    {
        JobCompleted => new JobStatus(_jobId, JobState.Completed, _accepted?.Rows ?? _rowsDone, _accepted?.Rows ?? _rowsDone),
        JobFailed failed => new JobStatus(_jobId, JobState.Failed, _rowsDone, _accepted?.Rows ?? 0, failed.Reason),
        _ when _accepted is not null => new JobStatus(_jobId, JobState.Running, _rowsDone, _accepted.Rows),
        _ when _pending is not null || _job is not null => new JobStatus(_jobId, JobState.Submitted, 0, 0),
        _ => new JobStatus(_jobId, JobState.Unknown, 0, 0),
    };
}
