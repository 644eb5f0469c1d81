using Akka.Actor;
using DistributedInference.Actors.Kernel.Membership;
using DistributedInference.Actors.Kernel.Rows;
using DistributedInference.Actors.Kernel.Transport;
using DistributedInference.Models;

namespace DistributedInference.Actors.Pipeline;

/// <summary>
/// Owns the stages of one pipeline (its children, or actors that stage hosts on other nodes create for it, see
/// <see cref="StagePlacement"/>), cuts each call into micro-batches, feeds them to the first stage
/// through a credit window (at most <c>maxInFlight</c> micro-batches inside the pipe, whatever the number of calls),
/// and reassembles the last stage's outputs in order. Calls stream: micro-batches of the next call enter as soon as
/// credit allows, so stages do not drain between calls. A stage that stops breaks the pipeline: running and later
/// calls fail with the reason. Supervision: a local stage that throws is stopped, never restarted (a restarted stage
/// would have lost its queue and its next stage, and stall; see <see cref="Kernel.Supervision.Supervision.StopOnFailure"/>),
/// which breaks the pipeline; the coordinator itself is never restarted either: a failure fails its calls and stops it.
/// </summary>
public sealed class PipelineCoordinator : MembersOnlyActor
{
    public const string ActorName = "pipeline";

    private static int _created;

    private const int TimingsKeptPerStage = 100_000;

    private readonly IReadOnlyList<StagePlacement> _placements;
    private readonly int _maxInFlight;
    private readonly IActorRef? _readyTo;
    private readonly IActorRef?[] _stages;
    private readonly CreditWindow<MicroBatch> _window;
    private readonly CallBook _calls = new();
    private readonly List<List<StageTiming>> _timings = [];
    private int _ready;
    private string[]? _descriptions;
    private bool _connected;
    private string? _broken;

    public PipelineCoordinator(IReadOnlyList<StagePlacement> placements, int maxInFlight, IActorRef? readyTo)
    {
        _placements = placements;
        _stages = new IActorRef?[placements.Count];
        _maxInFlight = maxInFlight;
        _window = new CreditWindow<MicroBatch>(Math.Max(1, maxInFlight));
        _readyTo = readyTo;
        Receive<RunPipeline>(HandleRunPipeline);
        Receive<RunPipelineStep>(HandleRunPipelineStep);
        Receive<MicroBatch>(HandleOutput);
        Receive<StageTiming>(HandleTiming);
        Receive<MicroBatchFailed>(HandleMicroBatchFailed);
        Receive<StageHosted>(HandleStageHosted);
        Receive<StageReady>(HandleStageReady);
        Receive<StageLoadFailed>(failed => _readyTo?.Tell(failed));
        Receive<Terminated>(HandleTerminated);
        Receive<Akka.Cluster.ClusterEvent.UnreachableMember>(HandleUnreachable);
        Receive<GetPipelineMetrics>(_ => Sender.Tell(new PipelineMetrics(Metrics(_timings.SelectMany(t => t).ToList()), _calls.Completed)));
        Receive<GetStageTimings>(_ => Sender.Tell(_timings.Select(t => (IReadOnlyList<StageTiming>)t.ToList()).ToList()));
    }

    /// <summary>
    /// A name no other pipeline of this process has: several pipelines may share an actor system, and a stopped one's
    /// name is freed only some time after it stops.
    /// </summary>
    public static string UniqueName() => $"{ActorName}-{Interlocked.Increment(ref _created)}";

    /// <param name="stageWork">What each stage computes, built on that stage's thread, in stage order.</param>
    /// <param name="maxInFlight">Micro-batches allowed inside the pipe at once (backpressure).</param>
    /// <param name="readyTo">Told <see cref="PipelineReady"/> once every stage is built, or <see cref="StageLoadFailed"/>.</param>
    public static Props Props(IReadOnlyList<Func<IStageWork>> stageWork, int maxInFlight, IActorRef? readyTo = null) =>
        Props(StagePlacement.Local(stageWork), maxInFlight, readyTo);

    /// <param name="placements">Where each stage lives, in stage order: local stages are children, remote ones are asked of their host.</param>
    /// <param name="maxInFlight">Micro-batches allowed inside the pipe at once (backpressure, also between nodes).</param>
    /// <param name="readyTo">Told <see cref="PipelineReady"/> once every stage is built, or <see cref="StageLoadFailed"/>.</param>
    public static Props Props(IReadOnlyList<StagePlacement> placements, int maxInFlight, IActorRef? readyTo = null) =>
        Akka.Actor.Props.Create(() => new PipelineCoordinator(placements, maxInFlight, readyTo)).WithDispatcher(Kernel.Settings.DistributedInferenceConfig.ComputeDispatcher);

    protected override SupervisorStrategy SupervisorStrategy() => Kernel.Supervision.Supervision.StopOnFailure();

    // The coordinator that threw fails its calls (PostStop, with the error) and stops; a restart never replays its start.
    protected override void PreRestart(Exception reason, object message)
    {
        _broken ??= $"the pipeline coordinator failed: {reason.GetType().Name}: {reason.Message.Split('\n', 2)[0]}";
        base.PreRestart(reason, message);
    }

    protected override void PostRestart(Exception reason) => Context.Stop(Self);

    protected override void PreStart()
    {
        if (_placements.Count == 0 || _maxInFlight <= 0)
        {
            _readyTo?.Tell(new PipelineStartFailed($"a pipeline needs at least one stage and a positive credit window (got {_placements.Count} stages, max in flight {_maxInFlight})"));
            Context.Stop(Self);
            return;
        }

        _timings.AddRange(_placements.Select(_ => new List<StageTiming>()));
        if (_placements.Any(p => p is RemoteStage))
        {
            Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, Akka.Cluster.ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents, typeof(Akka.Cluster.ClusterEvent.UnreachableMember));
        }

        for (var s = 0; s < _placements.Count; s++)
        {
            switch (_placements[s])
            {
                case LocalStage local:
                    HandleStageHosted(new StageHosted(s, Context.ActorOf(PipelineStage.Props(s, local.Work, Self), PipelineStage.Name(s))));
                    break;
                case RemoteStage remote:
                    Context.Watch(remote.Host);
                    remote.Request(s, Self);
                    break;
            }
        }
    }

    // Stages are not the coordinator's children when they live on other nodes: stop them explicitly.
    protected override void PostStop()
    {
        // Calls still running get an answer rather than a wait that never ends.
        foreach (var jobId in _calls.Running)
        {
            _calls.Fail(jobId)!.ReplyTo.Tell(new PipelineFailed(jobId, _broken ?? "the pipeline was stopped"));
        }

        _window.Clear(waiting => waiting.Payload.Dispose());

        if (_placements.Any(p => p is RemoteStage))
        {
            Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);
        }

        for (var s = 0; s < _stages.Length; s++)
        {
            if (_placements[s] is RemoteStage)
            {
                _stages[s]?.Tell(PoisonPill.Instance);
            }
        }
    }

    private void HandleStageHosted(StageHosted hosted)
    {
        if (hosted.Stage < 0 || hosted.Stage >= _stages.Length || _stages[hosted.Stage] is not null)
        {
            return;
        }

        _stages[hosted.Stage] = hosted.StageActor;
        Context.Watch(hosted.StageActor);
        if (_stages.All(stage => stage is not null))
        {
            for (var s = 0; s < _stages.Length; s++)
            {
                _stages[s]!.Tell(s + 1 < _stages.Length ? new ConnectStage(_stages[s + 1]!) : new ConnectStage(Self));
            }

            _connected = true;
            ReportReady();
            Pump();
        }
    }

    private void HandleStageReady(StageReady ready)
    {
        _descriptions ??= new string[_stages.Length];
        if (ready.Stage >= 0 && ready.Stage < _descriptions.Length)
        {
            _descriptions[ready.Stage] = ready.Description;
        }

        _ready++;
        ReportReady();
    }

    private void ReportReady()
    {
        if (_connected && _ready == _stages.Length)
        {
            _readyTo?.Tell(new PipelineReady(_stages.Select(s => s!).ToList()) { Descriptions = _descriptions?.Select(d => d ?? string.Empty).ToList() ?? [] });
        }
    }

    // The coordinator owns the call's input: it cuts micro-batches with handles of their own and releases the input.
    private void HandleRunPipeline(RunPipeline run)
    {
        using var input = run.Input;
        if (_broken is not null)
        {
            run.ReplyTo.Tell(new PipelineFailed(run.JobId, _broken));
            return;
        }

        if (_calls.Contains(run.JobId))
        {
            run.ReplyTo.Tell(new PipelineFailed(run.JobId, $"a call with id {run.JobId} is already running", InputError: true));
            return;
        }

        int rows;
        try
        {
            rows = input.Count;
        }
        catch (InvalidInputException e)
        {
            run.ReplyTo.Tell(new PipelineFailed(run.JobId, e.Message, InputError: true));
            return;
        }

        if (run.NumChunks <= 0 || rows == 0)
        {
            run.ReplyTo.Tell(new PipelineFailed(run.JobId, rows == 0 ? "no rows to run" : $"num_chunks must be positive, got {run.NumChunks}", InputError: true));
            return;
        }

        // Uneven micro-batches, never zero-row padding: fewer rows than chunks means fewer, single-row chunks.
        var chunks = Share.Plan(rows, Math.Min(run.NumChunks, rows), applyPadding: false);
        _calls.Open(run.JobId, run.ReplyTo, run.GatherOutput, isStep: false, chunks.Select(chunk => chunk.Start).ToList(), rows);
        foreach (var chunk in chunks)
        {
            _window.Enqueue(new MicroBatch(run.JobId, chunk.Rank, input.Cut(chunk.Start, chunk.Count)));
        }

        Pump();
    }

    // One payload, not cut: a generation step of one micro-batch, whose stages keep state between steps.
    private void HandleRunPipelineStep(RunPipelineStep step)
    {
        if (_broken is not null)
        {
            step.Payload.Dispose();
            step.ReplyTo.Tell(new PipelineFailed(step.JobId, _broken));
            return;
        }

        if (_calls.Contains(step.JobId))
        {
            step.Payload.Dispose();
            step.ReplyTo.Tell(new PipelineFailed(step.JobId, $"a call with id {step.JobId} is already running", InputError: true));
            return;
        }

        // The payload goes on to the first stage as it is (the stages own it from here).
        _calls.Open(step.JobId, step.ReplyTo, gatherOutput: false, isStep: true, [0], rows: 1);
        _window.Enqueue(new MicroBatch(step.JobId, 0, step.Payload));
        Pump();
    }

    private void HandleOutput(MicroBatch output)
    {
        _window.Returned();

        // The output of a call that already failed, or a duplicate, is released by the book: nobody will take it.
        if (_calls.Output(output.JobId, output.Index, output.Payload) is { } call)
        {
            CompleteIfDone(call);
        }

        Pump();
    }

    private void HandleTiming(StageTiming sent)
    {
        // The stage measured durations on its clock; points in time are this node's.
        var timing = sent with { Arrived = DateTime.UtcNow };
        var kept = _timings[timing.Stage];
        kept.Add(timing);
        if (kept.Count > TimingsKeptPerStage)
        {
            kept.RemoveRange(0, kept.Count - TimingsKeptPerStage);
        }

        if (_calls.Timing(timing) is { } call)
        {
            CompleteIfDone(call);
        }
    }

    private void HandleMicroBatchFailed(MicroBatchFailed failed)
    {
        _window.Returned();
        Fail(failed.JobId, $"micro-batch {failed.Index}: {failed.Reason}", failed.InputError);
        Pump();
    }

    // Heartbeats notice a crashed node in seconds; Terminated waits for it to be downed and removed.
    private void HandleUnreachable(Akka.Cluster.ClusterEvent.UnreachableMember unreachable)
    {
        var stage = Array.FindIndex(_stages, s => s is not null && s.Path.Address == unreachable.Member.Address);
        if (stage >= 0)
        {
            Break($"pipeline stage {stage} is unreachable (node {unreachable.Member.Address})");
        }
    }

    private void HandleTerminated(Terminated terminated)
    {
        var stage = Array.IndexOf(_stages, terminated.ActorRef);
        if (stage < 0)
        {
            // A stage host that stopped before creating its stage (its own stage, if created, is watched on its own).
            for (var s = 0; s < _placements.Count; s++)
            {
                if (_stages[s] is null && _placements[s] is RemoteStage remote && remote.Host.Equals(terminated.ActorRef))
                {
                    _readyTo?.Tell(new StageLoadFailed(s, $"the stage host at {remote.Host.Path.Address} stopped", InputError: false));
                    Context.Stop(Self);
                }
            }

            return;
        }

        Break($"pipeline stage {stage} stopped{(terminated.AddressTerminated ? $" (node {terminated.ActorRef.Path.Address} is gone)" : string.Empty)}");
    }

    private void Break(string reason)
    {
        _broken ??= reason;
        foreach (var jobId in _calls.Running)
        {
            Fail(jobId, _broken, inputError: false);
        }
    }

    private void Pump()
    {
        if (!_connected)
        {
            return;
        }

        // A micro-batch of a call that failed before it entered the pipe is released, and costs no credit.
        foreach (var next in _window.Release(batch => _calls.Contains(batch.JobId), batch => batch.Payload.Dispose()))
        {
            _stages[0]!.Tell(next);
        }
    }

    // Done when every output is in and every stage's timing too: outputs may come on the data plane, timings through Akka.
    private void CompleteIfDone(PipelineCall call)
    {
        if (CallBook.IsComplete(call, _stages.Length))
        {
            Complete(call);
        }
    }

    private void Complete(PipelineCall call)
    {
        var jobId = call.JobId;
        _calls.Complete(jobId);
        if (call.IsStep)
        {
            call.ReplyTo.Tell(new PipelineStepCompleted(jobId, call.StepOutput!, call.Timings));
            return;
        }

        // The last stage's outputs in row order: the caller owns the join.
        var output = call.Outputs.Join()!;
        if (call.GatherOutput)
        {
            // Each stage gets its own copy (stages on other nodes on the data plane: it is the whole output).
            for (var s = 0; s < _stages.Length; s++)
            {
                Transport.Send(Context.System, _stages[s]!, new OutputGathered(jobId, output.Clone()), Self);
            }
        }

        var metrics = Metrics(call.Timings, call.Submitted);
        PipelineCallMetrics.Completed(metrics);
        call.ReplyTo.Tell(new PipelineCompleted(jobId, output, metrics));
    }

    private void Fail(string jobId, string reason, bool inputError)
    {
        // Its micro-batches already inside the pipe run to the end and are ignored there, which keeps the credit count exact.
        _calls.Fail(jobId)?.ReplyTo.Tell(new PipelineFailed(jobId, reason, inputError));
    }

    // Window: from the call's submission (or the first timing) to the last stage's last finish.
    private PipelineRunMetrics Metrics(IReadOnlyList<StageTiming> timings, DateTime? submitted = null)
    {
        if (timings.Count == 0)
        {
            return new PipelineRunMetrics(TimeSpan.Zero, []);
        }

        var start = submitted ?? timings.Min(t => t.Received);
        var end = timings.Max(t => t.Finished);
        var elapsed = end - start;
        var stages = Enumerable.Range(0, _stages.Length).Select(s =>
        {
            var mine = timings.Where(t => t.Stage == s).ToList();
            var busy = TimeSpan.FromTicks(mine.Sum(t => (t.Finished - t.Started).Ticks));
            var queued = TimeSpan.FromTicks(mine.Sum(t => (t.Started - t.Received).Ticks));
            return new StageMetrics(s, mine.Count, busy, elapsed - busy, queued);
        }).ToList();
        return new PipelineRunMetrics(elapsed, stages);
    }
}

/// <summary>Every stage of a pipeline has built its layers.</summary>
public sealed record PipelineReady(IReadOnlyList<IActorRef> Stages)
{
    /// <summary>What each stage said it built (layers, device, weights, its process's resident peak), in stage order.</summary>
    public IReadOnlyList<string> Descriptions { get; init; } = [];
}

/// <summary>Asks the coordinator for every stage's recent timings (stage order): answered with a list of lists of <see cref="StageTiming"/>.</summary>
public sealed record GetStageTimings
{
    public static readonly GetStageTimings Instance = new();
}
