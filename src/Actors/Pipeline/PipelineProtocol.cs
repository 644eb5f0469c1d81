using Akka.Actor;
using DistributedInference.Actors.Kernel.Rows;
using DistributedInference.Actors.Kernel.Wire;

namespace DistributedInference.Actors.Pipeline;

/// <summary>
/// Pipeline mode's wire format: the messages between a coordinator and its stages on other nodes (micro-batches and
/// their failures, gathered outputs: bulk; stage control and timings: Akka), and the calls and answers a coordinator
/// takes from another node.
/// </summary>
public sealed class PipelineProtocol : WireProtocol
{
    public override void Register(WireRegistry registry) => registry
        .Add<RunPipeline>("run-pipeline", (w, m) => { w.String(m.JobId); w.Rows(m.Input); w.Int(m.NumChunks); w.Bool(m.GatherOutput); w.Ref(m.ReplyTo); }, r => new RunPipeline(r.String(), r.Rows(), r.Int(), r.Bool(), r.Ref()))
        .Add<MicroBatch>("micro-batch", (w, m) => { w.String(m.JobId); w.Int(m.Index); w.Rows(m.Payload); }, r => new MicroBatch(r.String(), r.Int(), r.Rows()))
        .Add<MicroBatchFailed>("micro-batch-failed", (w, m) => { w.String(m.JobId); w.Int(m.Index); w.Int(m.Stage); w.String(m.Reason); w.Bool(m.InputError); }, r => new MicroBatchFailed(r.String(), r.Int(), r.Int(), r.String(), r.Bool()))
        .Add<StageTiming>("stage-timing", (w, m) => { w.Int(m.Stage); w.String(m.JobId); w.Int(m.Index); w.Time(m.Queued); w.Time(m.Busy); }, r => new StageTiming(r.Int(), r.String(), r.Int(), r.Time(), r.Time()))
        .Add<StageReady>("stage-ready", (w, m) => { w.Int(m.Stage); w.String(m.Description); }, r => new StageReady(r.Int(), r.String()))
        .Add<StageLoadFailed>("stage-load-failed", (w, m) => { w.Int(m.Stage); w.String(m.Reason); w.Bool(m.InputError); }, r => new StageLoadFailed(r.Int(), r.String(), r.Bool()))
        .Add<OutputGathered>("output-gathered", (w, m) => { w.String(m.JobId); w.Rows(m.Output); }, r => new OutputGathered(r.String(), r.Rows()))
        .Add<PipelineCompleted>("pipeline-completed", (w, m) => { w.String(m.JobId); w.Rows(m.Output); Metrics(w, m.Metrics); }, r => new PipelineCompleted(r.String(), r.Rows(), Metrics(r)))
        .Add<PipelineFailed>("pipeline-failed", (w, m) => { w.String(m.JobId); w.String(m.Reason); w.Bool(m.InputError); }, r => new PipelineFailed(r.String(), r.String(), r.Bool()))
        .Add("get-gathered-outputs", GetGatheredOutputs.Instance)
        .Add<GatheredOutputs>("gathered-outputs", (w, m) => w.Many(m.Outputs, (w, o) => { w.String(o.JobId); w.Rows(o.Output); }), r => new GatheredOutputs(r.Many(r => new OutputGathered(r.String(), r.Rows()))))
        .Add<ConnectStage>("connect-stage", (w, m) => w.Ref(m.Next), r => new ConnectStage(r.Ref()))
        .Add<StageHosted>("stage-hosted", (w, m) => { w.Int(m.Stage); w.Ref(m.StageActor); }, r => new StageHosted(r.Int(), r.Ref()));

    private static void Metrics(WireWriter writer, PipelineRunMetrics metrics)
    {
        writer.Time(metrics.Elapsed);
        writer.Many(metrics.Stages, (w, s) => { w.Int(s.Stage); w.Int(s.MicroBatches); w.Time(s.Busy); w.Time(s.Idle); w.Time(s.QueueTime); });
    }

    private static PipelineRunMetrics Metrics(WireReader reader) =>
        new(reader.Time(), reader.Many(r => new StageMetrics(r.Int(), r.Int(), r.Time(), r.Time(), r.Time())));
}

/// <summary>
/// Run rows through the pipeline: <see cref="Input"/> (a tensor, or a dictionary such as input_ids and
/// attention_mask) is cut into <see cref="NumChunks"/> micro-batches of nearly equal rows (never padded with zero
/// rows). The answer, <see cref="PipelineCompleted"/> or <see cref="PipelineFailed"/>, goes to <see cref="ReplyTo"/>.
/// Several calls may be in flight: their micro-batches stream through the stages back to back. The coordinator owns
/// <see cref="Input"/> (<see cref="RowBatch"/>); the micro-batches it cuts have handles of their own.
/// </summary>
public sealed record RunPipeline(string JobId, RowBatch Input, int NumChunks, bool GatherOutput, IActorRef ReplyTo) : ICarriesRows, IWireMessage
{
    RowBatch? ICarriesRows.Payload => Input;
}

/// <summary>
/// Run one payload through the stages as a single micro-batch, uncut (a generation step, whose stages keep state
/// between steps); answered with <see cref="PipelineStepCompleted"/> or <see cref="PipelineFailed"/>. Sent only to a
/// coordinator in the caller's own process. The stages own <see cref="Payload"/> (<see cref="RowBatch"/>).
/// </summary>
public sealed record RunPipelineStep(string JobId, RowBatch Payload, IActorRef ReplyTo) : ICarriesRows
{
    RowBatch? ICarriesRows.Payload => Payload;
}

/// <summary>The last stage's output of a <see cref="RunPipelineStep"/> (the receiver owns it), and when each stage received, started and finished it.</summary>
public sealed record PipelineStepCompleted(string JobId, RowBatch Output, IReadOnlyList<StageTiming> Timings) : ICarriesRows
{
    RowBatch? ICarriesRows.Payload => Output;
}

/// <summary>The output rows in input order (the receiver owns them), and how the stages spent the call.</summary>
public sealed record PipelineCompleted(string JobId, RowBatch Output, PipelineRunMetrics Metrics) : ICarriesRows, IWireMessage
{
    RowBatch? ICarriesRows.Payload => Output;
}

/// <summary>A call failed (<see cref="InputError"/>: its input is at fault).</summary>
public sealed record PipelineFailed(string JobId, string Reason, bool InputError = false) : IWireMessage;

/// <summary>
/// One micro-batch on its way from a stage to the next (the last stage sends it back to the coordinator); the receiver
/// owns <see cref="Payload"/>.
/// </summary>
public sealed record MicroBatch(string JobId, int Index, RowBatch Payload) : ICarriesRows, IBulkMessage
{
    RowBatch? ICarriesRows.Payload => Payload;
}

/// <summary>A stage could not run a micro-batch (to the coordinator).</summary>
public sealed record MicroBatchFailed(string JobId, int Index, int Stage, string Reason, bool InputError) : IBulkMessage;

/// <summary>
/// How long one micro-batch waited in a stage's queue and ran there (to the coordinator, for metrics). Both are
/// durations measured on the stage's node: the clocks of two machines are never subtracted. The coordinator stamps
/// <see cref="Arrived"/> with its own clock on receipt, and every point in time derived from it (<see cref="Finished"/>,
/// <see cref="Started"/>, <see cref="Received"/>) is on that one clock (late by the hop from the stage).
/// </summary>
public sealed record StageTiming(int Stage, string JobId, int Index, TimeSpan Queued, TimeSpan Busy) : IWireMessage
{
    /// <summary>When the coordinator received this timing, on the coordinator's clock (not sent over the wire).</summary>
    public DateTime Arrived { get; init; }

    /// <summary>When the stage finished the micro-batch, on the coordinator's clock: <see cref="Arrived"/>.</summary>
    public DateTime Finished => Arrived;

    /// <summary>When the stage started it, on the coordinator's clock (default until <see cref="Arrived"/> is stamped).</summary>
    public DateTime Started => Arrived == default ? default : Arrived - Busy;

    /// <summary>When the stage received it, on the coordinator's clock (default until <see cref="Arrived"/> is stamped).</summary>
    public DateTime Received => Arrived == default ? default : Started - Queued;
}

/// <summary>With gather_output, every stage is handed the call's whole output once it is complete: its own copy, which it owns.</summary>
public sealed record OutputGathered(string JobId, RowBatch Output) : ICarriesRows, IBulkMessage
{
    RowBatch? ICarriesRows.Payload => Output;
}

/// <summary>A stage has built its layers on its device (to the coordinator).</summary>
public sealed record StageReady(int Stage, string Description) : IWireMessage;

/// <summary>A stage could not build its layers; it stops.</summary>
public sealed record StageLoadFailed(int Stage, string Reason, bool InputError) : IWireMessage;

/// <summary>A coordinator could not start at all (its arguments are wrong); it stops. Local only (to the ready-to actor).</summary>
public sealed record PipelineStartFailed(string Reason);

/// <summary>Asks the coordinator for metrics over every call so far: answered with <see cref="PipelineMetrics"/>.</summary>
public sealed record GetPipelineMetrics
{
    public static readonly GetPipelineMetrics Instance = new();
}

/// <summary>Asks a stage for the outputs it was handed with gather_output: answered with <see cref="GatheredOutputs"/>.</summary>
public sealed record GetGatheredOutputs : IWireMessage
{
    public static readonly GetGatheredOutputs Instance = new();
}

/// <summary>
/// The most recent outputs a stage was handed with gather_output, oldest first: copies the asker owns (sent to another
/// node, the sender's copies are released once written).
/// </summary>
public sealed record GatheredOutputs(IReadOnlyList<OutputGathered> Outputs) : ICarriesRows, IWireMessage
{
    RowBatch? ICarriesRows.Payload => null;

    void ICarriesRows.ReleaseRows()
    {
        foreach (var output in Outputs)
        {
            output.Output.Dispose();
        }
    }
}

/// <summary>Per stage: busy (running micro-batches), idle (the rest of the window) and queue time (waiting to start).</summary>
public sealed record StageMetrics(int Stage, int MicroBatches, TimeSpan Busy, TimeSpan Idle, TimeSpan QueueTime)
{
    public double Utilisation => Busy + Idle == TimeSpan.Zero ? 0 : Busy / (Busy + Idle);
}

/// <summary>
/// A call's window (first micro-batch in to last result out) and each stage's share of it. The bubble fraction is
/// the part of stages x window that no stage spent computing.
/// </summary>
public sealed record PipelineRunMetrics(TimeSpan Elapsed, IReadOnlyList<StageMetrics> Stages)
{
    public double BubbleFraction => Elapsed == TimeSpan.Zero || Stages.Count == 0
        ? 0
        : 1 - (Stages.Sum(s => s.Busy.TotalSeconds) / (Stages.Count * Elapsed.TotalSeconds));
}

/// <summary>Metrics since the pipeline started, over every call.</summary>
public sealed record PipelineMetrics(PipelineRunMetrics Total, int Calls);

/// <summary>
/// Tells a stage where its micro-batches go next: the next stage, or the coordinator after the last stage (the
/// transport finds the way to that actor's node).
/// </summary>
public sealed record ConnectStage(IActorRef Next) : IWireMessage;

/// <summary>A stage host on some node has created the actor of stage <see cref="Stage"/> (to the coordinator).</summary>
public sealed record StageHosted(int Stage, IActorRef StageActor) : IWireMessage;
