using Akka.Actor;
using DistributedInference.Actors.Kernel.Rows;

namespace DistributedInference.Actors.Pipeline;

/// <summary>
/// The calls a pipeline coordinator is running: for each, where its micro-batches start in its rows, the last stage's
/// outputs put back in row order (<see cref="RowAssembler"/>, each micro-batch once), and every stage's timing. A call is
/// complete when every output and every timing is in (outputs may come on the data plane, timings through Akka). Plain
/// and single-threaded: the coordinator owns it.
/// </summary>
public sealed class CallBook
{
    private readonly Dictionary<string, PipelineCall> _calls = new(StringComparer.Ordinal);

    /// <summary>Calls running now.</summary>
    public int Count => _calls.Count;

    /// <summary>Calls completed since the pipeline started.</summary>
    public int Completed { get; private set; }

    /// <summary>Whether a call with this id is running.</summary>
    public bool Contains(string jobId) => _calls.ContainsKey(jobId);

    /// <summary>Opens a call of <paramref name="rows"/> rows cut at <paramref name="starts"/> (micro-batch i starts at row starts[i]).</summary>
    public PipelineCall Open(string jobId, IActorRef replyTo, bool gatherOutput, bool isStep, IReadOnlyList<int> starts, int rows)
    {
        var call = new PipelineCall(jobId, replyTo, gatherOutput, isStep, starts, new RowAssembler(rows), DateTime.UtcNow);
        _calls.Add(jobId, call);
        return call;
    }

    /// <summary>
    /// Micro-batch <paramref name="index"/> of call <paramref name="jobId"/> came out of the last stage: the call takes it
    /// (and returns itself), or, for a call that is over or an output it has already, it is released (null).
    /// </summary>
    public PipelineCall? Output(string jobId, int index, RowBatch output)
    {
        if (!_calls.TryGetValue(jobId, out var call) || index < 0 || index >= call.Starts.Count || (call.IsStep ? call.StepOutput is not null : call.Outputs.Has(call.Starts[index])))
        {
            output.Dispose();
            return null;
        }

        if (call.IsStep)
        {
            call.StepOutput = output;
        }
        else
        {
            call.Outputs.Add(call.Starts[index], output);
        }

        call.Received++;
        return call;
    }

    /// <summary>A stage's timing of a micro-batch of call <paramref name="timing"/>.JobId; returns the call, if it runs.</summary>
    public PipelineCall? Timing(StageTiming timing)
    {
        if (!_calls.TryGetValue(timing.JobId, out var call))
        {
            return null;
        }

        call.Timings.Add(timing);
        return call;
    }

    /// <summary>Whether every output and every one of <paramref name="stages"/> stages' timings of <paramref name="call"/> are in.</summary>
    public static bool IsComplete(PipelineCall call, int stages) =>
        call.Received == call.Starts.Count && call.Timings.Count == call.Starts.Count * stages;

    /// <summary>Closes a completed call: the caller joins its outputs (<see cref="PipelineCall.Outputs"/>).</summary>
    public PipelineCall Complete(string jobId)
    {
        _calls.Remove(jobId, out var call);
        Completed++;
        return call!;
    }

    /// <summary>Closes a call that failed, releasing the outputs it had; null when no such call runs.</summary>
    public PipelineCall? Fail(string jobId)
    {
        if (!_calls.Remove(jobId, out var call))
        {
            return null;
        }

        call.Outputs.Dispose();
        call.StepOutput?.Dispose();
        return call;
    }

    /// <summary>The ids of every running call.</summary>
    public IReadOnlyList<string> Running => [.. _calls.Keys];
}

/// <summary>One call running through a pipeline (see <see cref="CallBook"/>).</summary>
/// <param name="JobId">The call's id.</param>
/// <param name="ReplyTo">Who gets the answer.</param>
/// <param name="GatherOutput">Hand the output to every stage too.</param>
/// <param name="IsStep">A generation step: one uncut micro-batch, answered with its output as it is.</param>
/// <param name="Starts">Where each micro-batch starts in the call's rows.</param>
/// <param name="Outputs">The last stage's outputs, in row order (a call; a step keeps <see cref="StepOutput"/>).</param>
/// <param name="Submitted">When the call came, on the coordinator's clock.</param>
public sealed record PipelineCall(string JobId, IActorRef ReplyTo, bool GatherOutput, bool IsStep, IReadOnlyList<int> Starts, RowAssembler Outputs, DateTime Submitted)
{
    /// <summary>Every stage's timing of the call's micro-batches so far.</summary>
    public List<StageTiming> Timings { get; } = [];

    /// <summary>Outputs received.</summary>
    public int Received { get; set; }

    /// <summary>A step's output, as the last stage returned it (not joined: a step is one micro-batch).</summary>
    public RowBatch? StepOutput { get; set; }
}
