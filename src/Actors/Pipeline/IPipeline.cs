using Akka.Actor;
using DistributedInference.Actors.Kernel.Requests;

namespace DistributedInference.Actors.Pipeline;

/// <summary>A running pipeline that calls stream through: one in this process, or one over the cluster.</summary>
public interface IPipeline : IAsyncDisposable
{
    /// <summary>The stage actors, in stage order (of the current plan).</summary>
    IReadOnlyList<IActorRef> Stages { get; }

    /// <summary>What each stage built, as it said when ready (layers, device, weights, its process's resident peak then).</summary>
    IReadOnlyList<string> StageDescriptions { get; }

    /// <summary>
    /// Runs rows through the stages in <paramref name="numChunks"/> micro-batches (default: one per stage) and returns
    /// the output rows in order.
    /// </summary>
    Task<PipelineCompleted> RunAsync(object input, int? numChunks = null, bool gatherOutput = false, CancellationToken cancellation = default);

    /// <summary>
    /// Runs one payload through the stages as a single, uncut micro-batch (a generation step: the stages keep state
    /// between the steps of a sequence) and returns the last stage's output with every stage's timing.
    /// </summary>
    /// <exception cref="StageStateLostException">A stage was lost and the pipeline planned again: state kept on the stages is gone.</exception>
    /// <exception cref="Replica.JobFailedException">The step failed (a stage error, or the pipeline is broken).</exception>
    Task<PipelineStepCompleted> StepAsync(object payload, CancellationToken cancellation = default);

    /// <summary>Metrics over every call so far (of the current plan).</summary>
    Task<PipelineMetrics> MetricsAsync(CancellationToken cancellation = default);
}
