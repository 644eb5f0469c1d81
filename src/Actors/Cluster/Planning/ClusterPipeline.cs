using Akka.Actor;
using DistributedInference.Actors.Kernel.Requests;
using DistributedInference.Actors.Pipeline;
using DistributedInference.Actors.Replica;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Tasks;

namespace DistributedInference.Actors.Cluster.Planning;

/// <summary>
/// A pipeline over the stage hosts of the cluster that outlives its nodes: when a call fails because a stage stopped
/// or its node became unreachable, the pipeline is planned again over the device nodes Up and reachable now (fewer
/// stages if fewer devices remain) and the call runs again, up to <see cref="MaxAttempts"/> times. Calls that
/// fail together share one re-plan. The fail-over itself is a <see cref="PipelineFailover"/> actor: every call borrows
/// the current runtime from it and gives it back, so a runtime is disposed only once no call uses it.
/// </summary>
public sealed class ClusterPipeline : IPipeline
{
    public const int MaxAttempts = 3;

    private static readonly TimeSpan FindTimeout = TimeSpan.FromMinutes(2);

    // A borrow waits at most for one re-plan: finding the hosts, then loading the stages.
    private static readonly TimeSpan BorrowTimeout = FindTimeout + PipelineRuntime.LoadTimeout + TimeSpan.FromMinutes(1);

    private readonly ActorSystem _system;
    private readonly IActorRef _failover;
    private readonly object _gate = new();
    private PipelineLease _latest;

    private ClusterPipeline(ActorSystem system, IActorRef failover, PipelineLease first)
    {
        _system = system;
        _failover = failover;
        _latest = first;
    }

    /// <summary>The current plan (the newest any call has run on).</summary>
    public ClusterPipelinePlan Plan => Latest.Pipeline.Plan!;

    /// <summary>How many times the pipeline was planned again after losing a stage.</summary>
    public int Replans => Latest.Generation;

    public IReadOnlyList<IActorRef> Stages => Latest.Pipeline.Runtime.Stages;

    public IReadOnlyList<string> StageDescriptions => Latest.Pipeline.Runtime.StageDescriptions;

    private PipelineLease Latest
    {
        get
        {
            lock (_gate)
            {
                return _latest;
            }
        }
    }

    /// <param name="nodes">Device nodes to wait for before the first plan; null: those Up now.</param>
    /// <param name="log">Told the plan, and why and how it changes.</param>
    /// <param name="model">The model the job is for: the stage hosts must serve these weights (else one-line <see cref="InvalidInputException"/>).</param>
    /// <param name="task">The task the job runs: the stage hosts must have staged their model for it.</param>
    public static async Task<ClusterPipeline> StartAsync(
        ActorSystem system, ModelIdentity model, InferenceTask task, string splitPoints, Precision dtype, int? nodes, Action<string>? log = null, CancellationToken cancellation = default)
    {
        log ??= _ => { };
        var first = await Build(system, model, task, splitPoints, dtype, nodes, cancellation);
        log(first.Description);
        var failover = system.ActorOf(
            PipelineFailover.Props(first, token => Build(system, model, task, splitPoints, dtype, nodes: null, token), log),
            PipelineFailover.UniqueName());
        return new ClusterPipeline(system, failover, new PipelineLease(Guid.Empty, 0, first));
    }

    public async Task<PipelineCompleted> RunAsync(object input, int? numChunks = null, bool gatherOutput = false, CancellationToken cancellation = default)
    {
        for (var attempt = 1; ; attempt++)
        {
            var lease = await Borrow(cancellation);
            try
            {
                var completed = await lease.Pipeline.Runtime.RunAsync(input, numChunks, gatherOutput, cancellation);
                _failover.Tell(new ReleasePipeline(lease.Lease));
                return completed;
            }
            catch (JobFailedException e) when (attempt < MaxAttempts && !cancellation.IsCancellationRequested)
            {
                await ReportLost(lease, e.Message, cancellation);
            }
            catch
            {
                _failover.Tell(new ReleasePipeline(lease.Lease));
                throw;
            }
        }
    }

    /// <inheritdoc/>
    /// <remarks>A step that fails because a stage was lost re-plans the pipeline (once for every step that failed
    /// with it) and throws <see cref="StageStateLostException"/>: the caller starts its state again on the new stages.</remarks>
    public async Task<PipelineStepCompleted> StepAsync(object payload, CancellationToken cancellation = default)
    {
        var lease = await Borrow(cancellation, keepsState: true)
            ?? throw new StageStateLostException("a stage was lost and the pipeline planned again while the step waited to run");
        try
        {
            var completed = await lease.Pipeline.Runtime.StepAsync(payload, cancellation);
            _failover.Tell(new ReleasePipeline(lease.Lease));
            return completed;
        }
        catch (JobFailedException e) when (!cancellation.IsCancellationRequested)
        {
            await ReportLost(lease, e.Message, cancellation);
            throw new StageStateLostException($"{e.Message}; the pipeline was planned again", e);
        }
        catch
        {
            _failover.Tell(new ReleasePipeline(lease.Lease));
            throw;
        }
    }

    public async Task<PipelineMetrics> MetricsAsync(CancellationToken cancellation = default)
    {
        var lease = await Borrow(cancellation);
        try
        {
            return await lease.Pipeline.Runtime.MetricsAsync(cancellation);
        }
        finally
        {
            _failover.Tell(new ReleasePipeline(lease.Lease));
        }
    }

    /// <summary>Disposes the current runtime (giving up a re-plan under way) and stops the fail-over actor.</summary>
    public async ValueTask DisposeAsync()
    {
        if (!_system.WhenTerminated.IsCompleted)
        {
            await _failover.Ask<PipelineStopped>(StopPipeline.Instance, BorrowTimeout);
        }
    }

    private static string Describe(ClusterPipelinePlan plan, string splitPoints) =>
        $"pipeline plan over {plan.Hosts.Select(h => h.Node).Distinct().Count()} node(s) ({splitPoints}):{Environment.NewLine}{plan.Describe()}";

    private static async Task<PlannedPipeline> Build(
        ActorSystem system, ModelIdentity model, InferenceTask task, string splitPoints, Precision dtype, int? nodes, CancellationToken cancellation)
    {
        var hosts = await ClusterPipelinePlanner.FindHostsAsync(system, nodes, FindTimeout, cancellation);
        var plan = ClusterPipelinePlanner.Plan(hosts, model, task, splitPoints, dtype);
        return new PlannedPipeline(await PipelineRuntime.StartAsync(plan.Placements, system, cancellation: cancellation), plan, Describe(plan, splitPoints));
    }

    // The current runtime, lent for one call (waiting out a re-plan); a caller that gives up lets go of it at once.
    // Null for a call that keeps state on the stages and asked during a re-plan (that state is gone).
    private async Task<PipelineLease> Borrow(CancellationToken cancellation) => (await Borrow(cancellation, keepsState: false))!;

    private async Task<PipelineLease?> Borrow(CancellationToken cancellation, bool keepsState)
    {
        var id = Guid.NewGuid();
        try
        {
            var answer = await _failover.Ask<object>(new AcquirePipeline(id, keepsState), BorrowTimeout, cancellation);
            if (answer is Status.Failure failure)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure.Cause);
            }

            if (answer is not PipelineLease lease)
            {
                return null;
            }

            lock (_gate)
            {
                if (lease.Generation > _latest.Generation)
                {
                    _latest = lease;
                }
            }

            return lease;
        }
        catch (Exception e) when (e is OperationCanceledException or AskTimeoutException)
        {
            _failover.Tell(new ReleasePipeline(id));
            throw;
        }
    }

    // Hands the lease back as lost and waits for the pipeline to be planned again (or to break).
    private async Task ReportLost(PipelineLease lease, string reason, CancellationToken cancellation) =>
        await _failover.Ask<PipelineReplanned>(new PipelineStageLost(lease.Lease, lease.Generation, reason), BorrowTimeout, cancellation);
}
