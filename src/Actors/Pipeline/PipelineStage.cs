using System.Diagnostics;
using Akka.Actor;
using Akka.Event;
using DistributedInference.Actors.Kernel.Membership;
using DistributedInference.Actors.Kernel.Rows;
using DistributedInference.Actors.Kernel.Settings;
using DistributedInference.Actors.Kernel.Transport;
using DistributedInference.Models;
using DistributedInference.Models.Runtime;

namespace DistributedInference.Actors.Pipeline;

/// <summary>
/// One pipeline stage: owns its layers on its device, on its own pinned thread. Micro-batches are run in arrival order
/// and forwarded to the next stage (the last stage's next is the coordinator), which <see cref="ConnectStage"/> names;
/// until then they wait. Readiness, timings and failures go to the coordinator, which may be on another node.
/// Ownership (<see cref="RowBatch"/>): the stage owns each micro-batch it receives; it hands the payload's raw value
/// to its <see cref="IStageWork"/>, disposes every tensor of it the work did not return, and sends what the work
/// returned on (the next stage owns it). Gathered outputs are its own copies, kept until newer ones push them out.
/// </summary>
public sealed class PipelineStage : MembersOnlyActor
{
    private const int GatheredOutputsKept = 16;

    private readonly int _stage;
    private readonly Func<IStageWork> _build;
    private readonly IActorRef _coordinator;
    private readonly Queue<(MicroBatch Batch, long Received)> _queue = new();
    private readonly Queue<OutputGathered> _gathered = new();
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private IActorRef? _next;
    private IStageWork? _work;
    private bool _processing;

    public PipelineStage(int stage, Func<IStageWork> build, IActorRef coordinator)
    {
        _stage = stage;
        _build = build;
        _coordinator = coordinator;
        Receive<MicroBatch>(batch =>
        {
            _queue.Enqueue((batch, Stopwatch.GetTimestamp()));
            ScheduleNext();
        });
        Receive<ConnectStage>(connect =>
        {
            _next = connect.Next;
            ScheduleNext();
        });
        Receive<ProcessNext>(_ => HandleProcessNext());
        Receive<OutputGathered>(HandleOutputGathered);
        Receive<GetGatheredOutputs>(_ => Sender.Tell(new GatheredOutputs(_gathered.Select(g => g with { Output = g.Output.Clone() }).ToList())));
    }

    public static Props Props(int stage, Func<IStageWork> build, IActorRef coordinator) =>
        Akka.Actor.Props.Create(() => new PipelineStage(stage, build, coordinator)).WithDispatcher(DistributedInferenceConfig.DeviceDispatcher);

    public static string Name(int stage) => $"stage-{stage}";

    protected override void PreStart()
    {
        try
        {
            LibTorch.Initialize();
            _work = _build();
        }
        catch (Exception e)
        {
            _log.Error(e, "stage {0}: could not build its layers", _stage);
            _coordinator.Tell(new StageLoadFailed(_stage, e.Message.Split('\n', 2)[0], e is InvalidInputException));
            Context.Stop(Self);
            return;
        }

        _coordinator.Tell(new StageReady(_stage, _work.Description));
    }

    protected override void PostStop()
    {
        foreach (var (batch, _) in _queue)
        {
            batch.Payload.Dispose();
        }

        foreach (var gathered in _gathered)
        {
            gathered.Output.Dispose();
        }

        _work?.Dispose();
    }

    private void HandleProcessNext()
    {
        _processing = false;
        if (!_queue.TryDequeue(out var next))
        {
            return;
        }

        var (batch, received) = next;
        var started = Stopwatch.GetTimestamp();
        try
        {
            // What the work did not hand on goes now; what it returned is the next stage's.
            var payload = batch.Payload.TakeResult(_work!.Run(batch.Payload.Value), "the stage");

            // Durations on this node's clock only: the coordinator may be on another machine.
            _coordinator.Tell(new StageTiming(_stage, batch.JobId, batch.Index, Stopwatch.GetElapsedTime(received, started), Stopwatch.GetElapsedTime(started)));
            Forward(new MicroBatch(batch.JobId, batch.Index, payload));
        }
        catch (Exception e)
        {
            batch.Payload.Dispose();
            _coordinator.Tell(new MicroBatchFailed(batch.JobId, batch.Index, _stage, $"stage {_stage}: {e.Message.Split('\n', 2)[0]}", e is InvalidInputException));
        }

        ScheduleNext();
    }

    // To a next stage (or coordinator) on another node through the data plane when both ends have one; else through Akka.
    private void Forward(MicroBatch output) => Transport.Send(Context.System, _next!, output, Self);

    private void HandleOutputGathered(OutputGathered output)
    {
        _gathered.Enqueue(output);
        while (_gathered.Count > GatheredOutputsKept)
        {
            _gathered.Dequeue().Output.Dispose();
        }
    }

    private void ScheduleNext()
    {
        if (!_processing && _next is not null && _queue.Count > 0)
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
