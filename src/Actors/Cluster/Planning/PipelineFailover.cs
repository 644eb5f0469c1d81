using Akka.Actor;
using Akka.Event;
using DistributedInference.Actors.Kernel.Membership;
using DistributedInference.Actors.Kernel.Requests;
using DistributedInference.Actors.Replica;

namespace DistributedInference.Actors.Cluster.Planning;

/// <summary>
/// The fail-over of one cluster pipeline: lends its current runtime to one call at a time per
/// <see cref="AcquirePipeline"/>, and when a call reports a lost stage (<see cref="PipelineStageLost"/>) plans the
/// pipeline again, once per generation however many calls fail with it. A runtime is disposed only when no call holds a
/// lease on it: on a re-plan the actor stops lending the old one, waits for every call on it to end, disposes it (so its
/// stages' memory is free before new stages load), then builds the next; calls asking meanwhile wait for the new one.
/// When planning again fails, the pipeline is broken: every later call fails with the reason. Nothing here blocks: the
/// disposal and the re-plan run as tasks whose ends come back as messages.
/// </summary>
public sealed class PipelineFailover : MembersOnlyActor, IWithStash
{
    /// <summary>The actor's name prefix; <see cref="UniqueName"/> gives one per pipeline.</summary>
    public const string ActorName = "pipeline-failover";

    private static int _created;

    private readonly Func<CancellationToken, Task<PlannedPipeline>> _replan;
    private readonly Action<string> _log;
    private readonly ILoggingAdapter _akkaLog = Context.GetLogger();
    private readonly Dictionary<Guid, int> _leases = [];
    private readonly HashSet<Guid> _released = [];
    private readonly List<IActorRef> _waiting = [];
    private readonly CancellationTokenSource _stopping = new();
    private PlannedPipeline? _current;
    private int _generation;
    private string _lostReason = string.Empty;
    private bool _disposing;

    /// <summary>Use <see cref="Props"/>.</summary>
    public PipelineFailover(PlannedPipeline first, Func<CancellationToken, Task<PlannedPipeline>> replan, Action<string> log)
    {
        _current = first;
        _replan = replan;
        _log = log;
        Serving();
    }

    /// <inheritdoc/>
    public IStash Stash { get; set; } = null!;

    /// <summary>A name for one more fail-over actor in this process.</summary>
    public static string UniqueName() => $"{ActorName}-{Interlocked.Increment(ref _created)}";

    /// <param name="first">Generation 0, already built; the actor owns it.</param>
    /// <param name="replan">Builds the next generation over the nodes up now; an exception (of any kind) breaks the
    /// pipeline. The token is cancelled when the actor stops.</param>
    /// <param name="log">Told why and how the plan changes (called on the actor's thread).</param>
    public static Props Props(PlannedPipeline first, Func<CancellationToken, Task<PlannedPipeline>> replan, Action<string> log) =>
        Akka.Actor.Props.Create(() => new PipelineFailover(first, replan, log));

    /// <inheritdoc/>
    protected override void PostStop()
    {
        _stopping.Cancel();
        _stopping.Dispose();
        base.PostStop();
    }

    private void Serving()
    {
        Receive<AcquirePipeline>(HandleAcquire);
        Receive<ReleasePipeline>(HandleRelease);
        Receive<PipelineStageLost>(lost =>
        {
            _leases.Remove(lost.Lease);
            if (lost.Generation < _generation)
            {
                Sender.Tell(new PipelineReplanned(_generation));
                return;
            }

            _lostReason = lost.Reason;
            _waiting.Add(Sender);
            _log($"pipeline lost a stage ({lost.Reason}); planning again over the nodes up now");
            Become(Replanning);
            DisposeWhenUnused();
        });
        Receive<StopPipeline>(_ => HandleStop());
    }

    // Generation _generation is lost: no new lease on it; the calls still on it end (they fail, or finish), then it is
    // disposed and the next one built.
    private void Replanning()
    {
        Receive<AcquirePipeline>(acquire =>
        {
            if (_released.Remove(acquire.Lease))
            {
                return;
            }

            if (acquire.KeepsState)
            {
                _waiting.Add(Sender);
            }
            else
            {
                Stash.Stash();
            }
        });
        Receive<ReleasePipeline>(release =>
        {
            HandleRelease(release);
            DisposeWhenUnused();
        });
        Receive<PipelineStageLost>(lost =>
        {
            _leases.Remove(lost.Lease);
            _waiting.Add(Sender);
            DisposeWhenUnused();
        });
        Receive<StopPipeline>(_ =>
        {
            // The re-plan under way is given up (it then fails, and the stop is handled once it has).
            _stopping.Cancel();
            Stash.Stash();
        });
        Receive<OldDisposed>(_ =>
        {
            _current = null;
            var self = Self;
            _replan(_stopping.Token).PipeTo(self, success: planned => new Built(planned), failure: e => new BuildFailed(e));
        });
        Receive<Built>(built =>
        {
            _current = built.Pipeline;
            _generation++;
            _disposing = false;
            _log(built.Pipeline.Description);
            _waiting.ForEach(w => w.Tell(new PipelineReplanned(_generation)));
            _waiting.Clear();
            Become(Serving);
            Stash.UnstashAll();
        });
        Receive<BuildFailed>(failed =>
        {
            var broken = $"{_lostReason}; planning again failed: {Unwrap(failed.Error).Message}";
            _akkaLog.Warning("{0}", broken);
            var failure = new Status.Failure(new JobFailedException(broken, Unwrap(failed.Error)));
            _waiting.ForEach(w => w.Tell(failure));
            _waiting.Clear();
            Become(() => Broken(failure));
            Stash.UnstashAll();
        });
    }

    // Planning again failed: the old runtime is disposed, no new one exists.
    private void Broken(Status.Failure failure)
    {
        Receive<AcquirePipeline>(_ => Sender.Tell(failure));
        Receive<PipelineStageLost>(_ => Sender.Tell(failure));
        Receive<ReleasePipeline>(_ => { });
        Receive<StopPipeline>(_ =>
        {
            Sender.Tell(PipelineStopped.Instance);
            Context.Stop(Self);
        });
    }

    private void HandleAcquire(AcquirePipeline acquire)
    {
        if (_released.Remove(acquire.Lease))
        {
            return;
        }

        _leases[acquire.Lease] = _generation;
        Sender.Tell(new PipelineLease(acquire.Lease, _generation, _current!));
    }

    // A lease not (yet) lent is remembered: its caller gave up before the answer, which is then not given.
    private void HandleRelease(ReleasePipeline release)
    {
        if (!_leases.Remove(release.Lease))
        {
            _released.Add(release.Lease);
        }
    }

    private void DisposeWhenUnused()
    {
        if (_disposing || _leases.Count > 0)
        {
            return;
        }

        _disposing = true;
        DisposeCurrent().PipeTo(Self, success: () => OldDisposed.Instance, failure: _ => OldDisposed.Instance);
    }

    private void HandleStop()
    {
        var sender = Sender;
        var self = Self;
        DisposeCurrent().ContinueWith(_ =>
        {
            sender.Tell(PipelineStopped.Instance);
            self.Tell(PoisonPill.Instance);
        }, TaskScheduler.Default);
        var disposed = new Status.Failure(new JobFailedException("the pipeline was disposed"));
        Become(() =>
        {
            Receive<AcquirePipeline>(_ => Sender.Tell(disposed));
            Receive<PipelineStageLost>(_ => Sender.Tell(disposed));
            Receive<object>(_ => { });
        });
    }

    private Task DisposeCurrent() => _current?.Runtime.DisposeAsync().AsTask() ?? Task.CompletedTask;

    private static Exception Unwrap(Exception e) => e is AggregateException { InnerExceptions.Count: 1 } a ? a.InnerException! : e;

    private sealed class OldDisposed
    {
        public static readonly OldDisposed Instance = new();
    }

    private sealed record Built(PlannedPipeline Pipeline);

    private sealed record BuildFailed(Exception Error);
}
