using Akka.Actor;
using Akka.Cluster.Sharding;
using Akka.Event;
using DistributedInference.Actors.Kernel.Membership;
using DistributedInference.Actors.Kernel.Rows;
using DistributedInference.Actors.Replica;

namespace DistributedInference.Actors.Cluster.Jobs;

/// <summary>
/// The home of one replica job in the cluster: an entity of the job shard region (keyed by job id, on nodes with the
/// control role), so a job submitted through any node lands here, once. It hands the job to its node's splitter,
/// relays the splitter's answers to the client, and keeps the outcome for <c>keepFinishedFor</c> before passivating:
/// a client that submits the same job id again (a retry after a lost connection) is re-attached to the running job,
/// or handed the outcome, instead of starting the work twice. It watches its client: a client that stops before the
/// job ends (cancelled, or its node gone) cancels the job.
/// </summary>
public sealed class JobCoordinator : MembersOnlyActor, IWithTimers
{
    private readonly string _jobId;
    private readonly IActorRef _splitter;
    private readonly TimeSpan _keepFinishedFor;
    private IActorRef? _client;
    private JobAccepted? _accepted;
    private object? _outcome;
    private int _rowsDone;
    private SubmitJob? _awaitingInput;

    public JobCoordinator(string jobId, IActorRef splitter, TimeSpan keepFinishedFor)
    {
        _jobId = jobId;
        _splitter = splitter;
        _keepFinishedFor = keepFinishedFor;
        Receive<SubmitJob>(HandleSubmit);
        Receive<CancelJob>(cancel =>
        {
            Context.GetLogger().Info("job {0}: cancelled by its client", _jobId);
            _splitter.Tell(cancel);
        });
        Receive<GetJobStatus>(_ => Sender.Tell(Status()));
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
        Receive<ReceiveTimeout>(_ => Context.Parent.Tell(new Passivate(PoisonPill.Instance)));
        Receive<Terminated>(HandleClientLost);
        Receive<JobInput>(input => input.JobId == _jobId && _awaitingInput is not null, input =>
        {
            Timers.Cancel(InputTimedOut.Instance);
            var submit = _awaitingInput! with { Input = input.Input, InputOnRequest = false };
            _awaitingInput = null;
            Start(submit);
        });

        // An input nobody asked for (a late answer to an ask already answered) is ours to release.
        Receive<JobInput>(input => input.Input.Dispose());
        Receive<InputTimedOut>(_ =>
        {
            if (_awaitingInput is not null)
            {
                _awaitingInput = null;
                Finish(new JobFailed(_jobId, FetchJobInput.NotSentWithin(InputTimeout)));
            }
        });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    private TimeSpan InputTimeout => Kernel.Settings.DistributedInferenceSettings.Get(Context.System).SubmitTimeout;

    public static Props Props(string jobId, IActorRef splitter, TimeSpan keepFinishedFor) =>
        Akka.Actor.Props.Create(() => new JobCoordinator(jobId, splitter, keepFinishedFor)).WithDispatcher(Kernel.Settings.DistributedInferenceConfig.ComputeDispatcher);

    private void HandleSubmit(SubmitJob submit)
    {
        var first = _client is null && _outcome is null;
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
            Context.GetLogger().Info("job {0}: coordinated here, for {1}", _jobId, submit.ReplyTo.Path.Address);
            if (submit.InputOnRequest)
            {
                _awaitingInput = submit;
                FetchInput();
                Timers.StartSingleTimer(InputTimedOut.Instance, InputTimedOut.Instance, InputTimeout);
            }
            else
            {
                Start(submit);
            }

            return;
        }

        // A submission of a job that is here already runs on the first one's input: its own is released.
        submit.Input.Dispose();

        // The same submission again before its input came (the first ask may be lost): ask again.
        if (_awaitingInput is not null)
        {
            _awaitingInput = submit;
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

    private void Start(SubmitJob submit) => _splitter.Tell(submit with { ReplyTo = Self });

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

        Context.GetLogger().Info("job {0}: its client at {1} is gone; cancelling the job", _jobId, terminated.ActorRef.Path.Address);
        _client = null;
        if (_awaitingInput is not null)
        {
            // Nothing runs yet: the job ends here.
            _awaitingInput = null;
            Timers.Cancel(InputTimedOut.Instance);
            Finish(new JobFailed(_jobId, "cancelled"));
            return;
        }

        _splitter.Tell(new CancelJob(_jobId));
    }

    private void Finish(object outcome)
    {
        if (_client is not null)
        {
            Context.Unwatch(_client);
        }

        _outcome = outcome;
        ToClient(ForClient(outcome));
        Context.SetReceiveTimeout(_keepFinishedFor);
    }

    // The coordinator keeps a finished job's results for a client that re-attaches: each client gets its own copy.
    private static object ForClient(object outcome) =>
        outcome is JobCompleted completed ? completed with { Results = completed.Results?.Clone() } : outcome;

    /// <inheritdoc />
    protected override void PostStop()
    {
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
        _ when _client is not null => new JobStatus(_jobId, JobState.Submitted, 0, 0),
        _ => new JobStatus(_jobId, JobState.Unknown, 0, 0),
    };
}
