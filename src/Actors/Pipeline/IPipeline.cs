using Akka.Actor;

namespace DistributedInference.Actors.Pipeline;

/// <summary>A running pipeline that calls stream through: one in this process, or one over the cluster.</summary>
public interface IPipeline : IAsyncDisposable
{
    /// <summary>The stage actors, in stage order (of the current plan).</summary>
    IReadOnlyList<IActorRef> Stages { get; }

    /// <summary>
    /// Runs rows through the stages in <paramref name="numChunks"/> micro-batches (default: one per stage) and returns
    /// the output rows in order.
    /// </summary>
    Task<PipelineCompleted> RunAsync(object input, int? numChunks = null, bool gatherOutput = false, CancellationToken cancellation = default);

    /// <summary>Metrics over every call so far (of the current plan).</summary>
    Task<PipelineMetrics> MetricsAsync();
}
