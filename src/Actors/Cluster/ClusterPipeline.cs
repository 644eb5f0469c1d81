using Akka.Actor;
using DistributedInference.Actors.Pipeline;
using DistributedInference.Actors.Replica;

namespace DistributedInference.Actors.Cluster;

/// <summary>
/// A pipeline over the stage hosts of the cluster that outlives its nodes: when a call fails because a stage stopped
/// or its node became unreachable, the pipeline is planned again over the device nodes Up and reachable now (fewer
/// stages if fewer devices remain) and the call runs again, up to <see cref="MaxAttempts"/> times. Calls that
/// fail together share one re-plan.
/// </summary>
public sealed class ClusterPipeline : IPipeline
{
    public const int MaxAttempts = 3;

    private static readonly TimeSpan FindTimeout = TimeSpan.FromMinutes(2);

    private readonly ActorSystem _system;
    private readonly string _model;
    private readonly string _splitPoints;
    private readonly string _dtype;
    private readonly Action<string> _log;
    private readonly SemaphoreSlim _replanning = new(1, 1);
    private PipelineRuntime _runtime;
    private int _generation;
    private string? _broken;

    private ClusterPipeline(ActorSystem system, string model, string splitPoints, string dtype, Action<string> log, ClusterPipelinePlan plan, PipelineRuntime runtime)
    {
        _system = system;
        _model = model;
        _splitPoints = splitPoints;
        _dtype = dtype;
        _log = log;
        Plan = plan;
        _runtime = runtime;
    }

    /// <summary>The current plan.</summary>
    public ClusterPipelinePlan Plan { get; private set; }

    /// <summary>How many times the pipeline was planned again after losing a stage.</summary>
    public int Replans => _generation;

    public IReadOnlyList<IActorRef> Stages => _runtime.Stages;

    public IReadOnlyList<string> StageDescriptions => _runtime.StageDescriptions;

    /// <param name="nodes">Device nodes to wait for before the first plan; null: those Up now.</param>
    /// <param name="log">Told the plan, and why and how it changes.</param>
    public static async Task<ClusterPipeline> StartAsync(ActorSystem system, string model, string splitPoints, string dtype, int? nodes, Action<string>? log = null, CancellationToken cancellation = default)
    {
        log ??= _ => { };
        var (plan, runtime) = await Build(system, model, splitPoints, dtype, nodes, cancellation);
        log(Describe(plan, splitPoints));
        return new ClusterPipeline(system, model, splitPoints, dtype, log, plan, runtime);
    }

    public async Task<PipelineCompleted> RunAsync(object input, int? numChunks = null, bool gatherOutput = false, CancellationToken cancellation = default)
    {
        for (var attempt = 1; ; attempt++)
        {
            if (_broken is not null)
            {
                throw new JobFailedException(_broken);
            }

            var (runtime, generation) = (_runtime, _generation);
            try
            {
                return await runtime.RunAsync(input, numChunks, gatherOutput, cancellation);
            }
            catch (JobFailedException e) when (attempt < MaxAttempts && !cancellation.IsCancellationRequested)
            {
                await Replan(generation, e.Message, cancellation);
            }
        }
    }

    /// <inheritdoc/>
    /// <remarks>A step that fails because a stage was lost re-plans the pipeline (once for every step that failed
    /// with it) and throws <see cref="StageStateLostException"/>: the caller starts its state again on the new stages.</remarks>
    public async Task<PipelineStepCompleted> StepAsync(object payload, CancellationToken cancellation = default)
    {
        if (_broken is not null)
        {
            throw new JobFailedException(_broken);
        }

        var (runtime, generation) = (_runtime, _generation);
        try
        {
            return await runtime.StepAsync(payload, cancellation);
        }
        catch (JobFailedException e) when (!cancellation.IsCancellationRequested)
        {
            await Replan(generation, e.Message, cancellation);
            throw new StageStateLostException($"{e.Message}; the pipeline was planned again", e);
        }
    }

    public Task<PipelineMetrics> MetricsAsync(CancellationToken cancellation = default) => _runtime.MetricsAsync(cancellation);

    public async ValueTask DisposeAsync()
    {
        await _runtime.DisposeAsync();
        _replanning.Dispose();
    }

    private static string Describe(ClusterPipelinePlan plan, string splitPoints) =>
        $"pipeline plan over {plan.Hosts.Select(h => h.Node).Distinct().Count()} node(s) ({splitPoints}):{Environment.NewLine}{plan.Describe()}";

    private static async Task<(ClusterPipelinePlan Plan, PipelineRuntime Runtime)> Build(
        ActorSystem system, string model, string splitPoints, string dtype, int? nodes, CancellationToken cancellation)
    {
        var hosts = await ClusterPipelinePlanner.FindHostsAsync(system, nodes, FindTimeout, cancellation);
        var plan = ClusterPipelinePlanner.Plan(hosts, model, splitPoints, dtype);
        return (plan, await PipelineRuntime.StartAsync(plan.Placements, system, cancellation: cancellation));
    }

    private async Task Replan(int failedGeneration, string reason, CancellationToken cancellation)
    {
        await _replanning.WaitAsync(cancellation);
        try
        {
            if (_generation != failedGeneration)
            {
                return;
            }

            _log($"pipeline lost a stage ({reason}); planning again over the nodes up now");
            await _runtime.DisposeAsync();
            ClusterPipelinePlan plan;
            PipelineRuntime runtime;
            try
            {
                (plan, runtime) = await Build(_system, _model, _splitPoints, _dtype, nodes: null, cancellation);
            }
            catch (Exception e) when (e is JobFailedException or Models.InvalidInputException or AskTimeoutException or ActorNotFoundException)
            {
                _broken = $"{reason}; planning again failed: {e.Message}";
                throw new JobFailedException(_broken, e);
            }

            (Plan, _runtime) = (plan, runtime);
            _generation++;
            _log(Describe(plan, _splitPoints));
        }
        finally
        {
            _replanning.Release();
        }
    }
}
