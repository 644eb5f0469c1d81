using Akka.Actor;
using DistributedInference.Actors.Kernel.Requests;
using DistributedInference.Actors.Kernel.Rows;
using DistributedInference.Actors.Kernel.Settings;
using DistributedInference.Actors.Replica;
using DistributedInference.Models;
using DistributedInference.Models.Partitioning;
using DistributedInference.Models.Staging;
using static TorchSharp.torch;

namespace DistributedInference.Actors.Pipeline;

/// <summary>
/// Pipeline mode in one process, ready to embed: a coordinator and one stage actor per stage of a plan, each building
/// its layers on its device. <see cref="StartAsync(IStagedModel, PipelinePlan, ScalarType, ActorSystem?, int?, CancellationToken)"/>
/// returns once every stage is built.
/// </summary>
public sealed class PipelineRuntime : IPipeline
{
    private readonly ActorSystem _system;
    private readonly bool _ownsSystem;
    /// <summary>How long every stage together may take to build its layers before <c>StartAsync</c> gives up.</summary>
    public static readonly TimeSpan LoadTimeout = TimeSpan.FromMinutes(10);

    private readonly CancellationTokenSource _stopping = new();
    private readonly TimeSpan _deadline;

    private PipelineRuntime(ActorSystem system, bool ownsSystem, IActorRef coordinator, IReadOnlyList<IActorRef> stages, IReadOnlyList<string> descriptions)
    {
        StageDescriptions = descriptions;
        _system = system;
        _ownsSystem = ownsSystem;
        Coordinator = coordinator;
        Stages = stages;
        _deadline = DistributedInferenceSettings.Get(system).JobTimeout;
    }

    public IActorRef Coordinator { get; }

    public IReadOnlyList<IActorRef> Stages { get; }

    /// <inheritdoc/>
    public IReadOnlyList<string> StageDescriptions { get; }

    /// <summary>Builds each stage of <paramref name="plan"/> from <paramref name="model"/> on its device.</summary>
    /// <param name="maxInFlight">Micro-batches inside the pipe at once; by default twice the number of stages.</param>
    public static Task<PipelineRuntime> StartAsync(
        IStagedModel model,
        PipelinePlan plan,
        ScalarType dtype,
        ActorSystem? system = null,
        int? maxInFlight = null,
        CancellationToken cancellation = default)
    {
        var work = plan.Stages.Select(stage => (Func<IStageWork>)(() => ModelStageWork.Load(
            () => model.CreateStage(stage.FirstLayer, stage.LayerCount, stage.Device.ToTorch(), dtype),
            last: stage.Stage == plan.Stages.Count - 1))).ToList();
        return StartAsync(work, system, maxInFlight, cancellation);
    }

    /// <summary>Any stage work (simulated stages included), in stage order.</summary>
    public static Task<PipelineRuntime> StartAsync(
        IReadOnlyList<Func<IStageWork>> stages,
        ActorSystem? system = null,
        int? maxInFlight = null,
        CancellationToken cancellation = default) =>
        StartAsync(StagePlacement.Local(stages), system, maxInFlight, cancellation);

    /// <summary>Stages placed anywhere: in this process, or on the stage hosts of other nodes of the cluster.</summary>
    /// <exception cref="ArgumentOutOfRangeException">No stages, or <paramref name="maxInFlight"/> not positive.</exception>
    /// <exception cref="JobFailedException">A stage could not be built, the coordinator stopped before the pipeline was
    /// ready, or the stages were not ready within <see cref="LoadTimeout"/>.</exception>
    public static async Task<PipelineRuntime> StartAsync(
        IReadOnlyList<StagePlacement> stages,
        ActorSystem? system = null,
        int? maxInFlight = null,
        CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(stages);
        ArgumentOutOfRangeException.ThrowIfZero(stages.Count, nameof(stages));
        if (maxInFlight is { } window)
        {
            ArgumentOutOfRangeException.ThrowIfNegativeOrZero(window, nameof(maxInFlight));
        }

        var ownsSystem = system is null;
        system ??= ActorSystem.Create("distributed-inference", DistributedInferenceConfig.Default());
        var request = Request.Start(system, null, null, new RequestPolicy { Deadline = LoadTimeout, Watch = RequestWatch.None }, cancellation);
        var coordinator = system.ActorOf(PipelineCoordinator.Props(stages, maxInFlight ?? 2 * stages.Count, request.Actor), PipelineCoordinator.UniqueName());
        request.Watch(coordinator);
        try
        {
            var answer = await request.NextAsync();
            switch (answer)
            {
                case StageLoadFailed failed:
                    var message = $"pipeline stage {failed.Stage} could not be built: {failed.Reason}";
                    throw failed.InputError ? new InvalidInputException(message) : new JobFailedException(message);
                case PipelineStartFailed failed:
                    throw new JobFailedException($"the pipeline could not start: {failed.Reason}");
                case AnswererLost:
                    throw new JobFailedException("the pipeline's coordinator stopped before every stage was ready");
                case DeadlinePassed:
                    throw new JobFailedException($"the pipeline's stages were not ready within {LoadTimeout}");
                case RequestCancelled:
                    throw new OperationCanceledException("the pipeline's start was cancelled", cancellation);
            }

            var ready = (PipelineReady)answer;
            return new PipelineRuntime(system, ownsSystem, coordinator, ready.Stages, ready.Descriptions);
        }
        catch
        {
            await (ownsSystem ? system.Terminate() : coordinator.GracefulStop(TimeSpan.FromSeconds(30)));
            throw;
        }
        finally
        {
            await request.DisposeAsync();
        }
    }

    /// <summary>
    /// Runs rows through the pipeline in <paramref name="numChunks"/> micro-batches (default: one per stage) and returns
    /// the output rows in order. Calls may overlap: they stream through the stages. A call fails with
    /// <see cref="JobFailedException"/> when the coordinator stops or the pipeline breaks, and when it takes longer than
    /// <c>distributed-inference.job-timeout</c>; <paramref name="cancellation"/> ends the wait
    /// (<see cref="OperationCanceledException"/>; a token already cancelled sends nothing). The caller keeps <paramref name="input"/> (the coordinator is sent
    /// new handles of it) and owns <see cref="PipelineCompleted.Output"/>.
    /// </summary>
    /// <exception cref="InvalidInputException"><paramref name="input"/> is not a tensor, a list or a dictionary of them.</exception>
    public async Task<PipelineCompleted> RunAsync(object input, int? numChunks = null, bool gatherOutput = false, CancellationToken cancellation = default)
    {
        cancellation.ThrowIfCancellationRequested();
        var rows = RowBatch.FromInput(input).Handles();
        var jobId = Guid.NewGuid().ToString("N");
        return await Call(replyTo => new RunPipeline(jobId, rows, MicroBatches.NumChunks(numChunks, Stages.Count), gatherOutput, replyTo), cancellation) switch
        {
            PipelineCompleted completed => completed,
            var other => throw new InvalidOperationException($"unexpected answer {other.GetType().Name}"),
        };
    }

    /// <inheritdoc/>
    /// <remarks>
    /// Fails like <see cref="RunAsync"/> when the coordinator stops or the call outlives its deadline. The caller keeps
    /// <paramref name="payload"/> (the stages are sent new handles of it) and owns <see cref="PipelineStepCompleted.Output"/>.
    /// </remarks>
    public async Task<PipelineStepCompleted> StepAsync(object payload, CancellationToken cancellation = default)
    {
        cancellation.ThrowIfCancellationRequested();
        var step = RowBatch.FromInput(payload).Handles();
        var jobId = Guid.NewGuid().ToString("N");
        return await Call(replyTo => new RunPipelineStep(jobId, step, replyTo), cancellation) switch
        {
            PipelineStepCompleted completed => completed,
            var other => throw new InvalidOperationException($"unexpected answer {other.GetType().Name}"),
        };
    }

    // One call: the coordinator's answer, with the call's deadline; a call on a pipeline being stopped (a re-plan replaces
    // it) fails rather than waits for an answer a stopped coordinator never gives.
    private async Task<object> Call(Func<IActorRef, object> call, CancellationToken cancellation)
    {
        using var either = CancellationTokenSource.CreateLinkedTokenSource(cancellation, _stopping.Token);
        var answer = await Request.AskAsync(_system, Coordinator, call, new RequestPolicy { Deadline = _deadline, CancelWait = TimeSpan.Zero }, either.Token);
        return answer switch
        {
            PipelineFailed { InputError: true } failed => throw new InvalidInputException(failed.Reason),
            PipelineFailed failed => throw new JobFailedException(failed.Reason),
            AnswererLost => throw new JobFailedException("the pipeline's coordinator stopped before the call ended"),
            DeadlinePassed => throw new JobFailedException($"the pipeline call did not finish within {_deadline} (distributed-inference.job-timeout)"),
            RequestCancelled when cancellation.IsCancellationRequested => throw new OperationCanceledException("the pipeline call was cancelled", cancellation),
            RequestCancelled => throw new JobFailedException("the pipeline was stopped while the call ran"),
            _ => answer,
        };
    }

    /// <summary>Metrics over every call so far.</summary>
    public Task<PipelineMetrics> MetricsAsync(CancellationToken cancellation = default) =>
        Coordinator.Ask<PipelineMetrics>(GetPipelineMetrics.Instance, TimeSpan.FromSeconds(30), cancellation);

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        if (_ownsSystem)
        {
            await _system.Terminate();
        }
        else
        {
            await Coordinator.GracefulStop(TimeSpan.FromSeconds(30));
        }
    }
}
