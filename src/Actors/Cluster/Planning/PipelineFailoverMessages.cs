using DistributedInference.Actors.Kernel.Requests;
using DistributedInference.Actors.Pipeline;

namespace DistributedInference.Actors.Cluster.Planning;

/// <summary>
/// A pipeline runtime and the plan it was built from, as the re-planning function of a <see cref="PipelineFailover"/>
/// returns it. The fail-over actor owns <paramref name="Runtime"/> from then on and disposes it once no call uses it.
/// </summary>
/// <param name="Plan">The cluster plan; null for a runtime built some other way (tests).</param>
/// <param name="Description">What the log is told about this plan.</param>
public sealed record PlannedPipeline(IPipeline Runtime, ClusterPipelinePlan? Plan, string Description);

/// <summary>
/// Asks a <see cref="PipelineFailover"/> for the runtime to make one call on. Answered with a
/// <see cref="PipelineLease"/> (held until the caller sends <see cref="ReleasePipeline"/> or <see cref="PipelineStageLost"/>
/// with the same <paramref name="Lease"/>), or a failure carrying a <see cref="Replica.JobFailedException"/> once
/// planning again has failed. Asked during a re-plan, it is answered when the new runtime is up.
/// </summary>
/// <param name="Lease">Chosen by the caller, unique per call.</param>
/// <param name="KeepsState">The call depends on state kept on the stages (a generation step): asked during a re-plan,
/// it gets no lease but <see cref="PipelineReplanned"/> once the new runtime is up, since its state went with the old one.</param>
public sealed record AcquirePipeline(Guid Lease, bool KeepsState = false);

/// <summary>The runtime of generation <paramref name="Generation"/> (0 for the first plan), lent for one call.</summary>
public sealed record PipelineLease(Guid Lease, int Generation, PlannedPipeline Pipeline);

/// <summary>
/// The call made on a lease ended (succeeded, or failed for a reason other than a lost stage; also sent by a caller that
/// gave up before the lease arrived). Not answered.
/// </summary>
public sealed record ReleasePipeline(Guid Lease);

/// <summary>
/// The call made on a lease failed because a stage was lost: the lease is let go, and the pipeline is planned again once
/// per generation however many calls report it. Answered with <see cref="PipelineReplanned"/> once a newer generation is
/// up (at once when one already is), or a failure carrying a <see cref="Replica.JobFailedException"/> when planning
/// again failed.
/// </summary>
public sealed record PipelineStageLost(Guid Lease, int Generation, string Reason);

/// <summary>Generation <paramref name="Generation"/> is up: calls may run again.</summary>
public sealed record PipelineReplanned(int Generation);

/// <summary>Disposes the current runtime and stops the fail-over actor; answered with <see cref="PipelineStopped"/>.</summary>
public sealed record StopPipeline
{
    /// <summary>The one instance.</summary>
    public static readonly StopPipeline Instance = new();
}

/// <summary>The runtime is disposed and the fail-over actor stops.</summary>
public sealed record PipelineStopped
{
    /// <summary>The one instance.</summary>
    public static readonly PipelineStopped Instance = new();
}
