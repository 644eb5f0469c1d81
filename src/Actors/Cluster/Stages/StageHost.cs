using Akka.Actor;
using Akka.Event;
using DistributedInference.Actors.Kernel.Membership;
using DistributedInference.Actors.Kernel.Transport;
using DistributedInference.Actors.Pipeline;
using DistributedInference.Models;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Staging;
using DistributedInference.Models.Tasks;

namespace DistributedInference.Actors.Cluster.Stages;

/// <summary>
/// Builds pipeline stages of this node's model for coordinators anywhere in the cluster, at the fixed path
/// <c>/user/stages</c> on nodes with the device role. The model is loaded once, off the actor's thread, when the host
/// starts; each stage is a <see cref="PipelineStage"/> child holding its own copy of its layers on one of this node's
/// devices. A coordinator's stages stop when it stops, or when its node leaves. A stage that throws is stopped, never
/// restarted (<see cref="Kernel.Supervision.Supervision.StopOnFailure"/>): its coordinator, watching it, fails its calls.
/// </summary>
public sealed class StageHost : MembersOnlyActor, IWithStash
{
    public const string ActorName = "stages";

    private readonly IReadOnlyList<DeviceName> _devices;
    private readonly ModelIdentity _model;
    private readonly InferenceTask _task;
    private readonly Func<IStagedModel> _load;
    private readonly Dictionary<IActorRef, List<IActorRef>> _stagesByCoordinator = new();
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private IStagedModel? _staged;
    private int _created;

    /// <param name="devices">This node's devices.</param>
    /// <param name="model">The model served (its weights): coordinators must ask for this one.</param>
    /// <param name="task">The task it is staged for: coordinators must ask for this one too.</param>
    /// <param name="load">Loads the staged model (on the CPU; stages copy their layers to their device).</param>
    public StageHost(IReadOnlyList<DeviceName> devices, ModelIdentity model, InferenceTask task, Func<IStagedModel> load)
    {
        _devices = devices;
        _model = model;
        _task = task;
        _load = load;
        Become(Loading);
    }

    public IStash Stash { get; set; } = null!;

    protected override SupervisorStrategy SupervisorStrategy() => Kernel.Supervision.Supervision.StopOnFailure();

    public static Props Props(IReadOnlyList<DeviceName> devices, ModelIdentity model, InferenceTask task, Func<IStagedModel> load) =>
        Akka.Actor.Props.Create(() => new StageHost(devices, model, task, load));

    protected override void PreStart()
    {
        var load = _load;
        Task.Run(() =>
        {
            LibTorch.Initialize();
            return load();
        }).PipeTo(Self, success: staged => new Loaded(staged, null), failure: e => new Loaded(null, e));
    }

    protected override void PostStop() => (_staged as IDisposable)?.Dispose();

    private void Loading()
    {
        Receive<Loaded>(loaded =>
        {
            if (loaded.Staged is null)
            {
                var reason = (loaded.Error?.GetBaseException().Message ?? "unknown error").Split('\n', 2)[0];
                _log.Error("stage host: could not load {0}: {1}", _model, reason);
                Become(() => Failed(reason));
            }
            else
            {
                _staged = loaded.Staged;
                _log.Info("stage host: {0} loaded ({1} layers) for {2}", _model, _staged.Layers.Count, string.Join(",", _devices));
                Become(Serving);
            }

            Stash.UnstashAll();
        });
        ReceiveAny(_ => Stash.Stash());
    }

    private void Serving()
    {
        Receive<GetStageHostInfo>(_ => Sender.Tell(new StageHostInfo(_devices.Select(d => d.ToString()).ToList(), _model, _task, _staged!.Layers, _devices.Select(DeviceMemory.FreeBytes).ToList())));
        Receive<HostStage>(HandleHostStage);
        Receive<Terminated>(HandleTerminated);
    }

    private void Failed(string reason)
    {
        Receive<GetStageHostInfo>(_ => Sender.Tell(new Status.Failure(new InvalidOperationException($"stage host could not load {_model}: {reason}"))));
        Receive<HostStage>(host => host.Coordinator.Tell(new StageLoadFailed(host.Spec.Stage, $"{Self.Path.Address}: could not load {_model}: {reason}", InputError: false)));
    }

    private void HandleHostStage(HostStage host)
    {
        var spec = host.Spec;
        var problem = Check(spec);
        if (problem is not null)
        {
            host.Coordinator.Tell(new StageLoadFailed(spec.Stage, $"{Self.Path.Address}: {problem}", InputError: true));
            return;
        }

        var staged = _staged!;
        var stage = Context.ActorOf(
            PipelineStage.Props(spec.Stage, () => ModelStageWork.Load(
                () => staged.CreateStage(spec.FirstLayer, spec.LayerCount, DeviceName.Parse(spec.Device).ToTorch(), spec.DType.ToScalarType()), spec.Last), host.Coordinator),
            $"{PipelineStage.Name(spec.Stage)}-{++_created}");
        Context.Watch(stage);
        if (!_stagesByCoordinator.TryGetValue(host.Coordinator, out var stages))
        {
            _stagesByCoordinator[host.Coordinator] = stages = [];
            Context.Watch(host.Coordinator);
        }

        stages.Add(stage);
        host.Coordinator.Tell(new StageHosted(spec.Stage, stage));
    }

    private string? Check(StageSpec spec)
    {
        if (!spec.Model.Equals(_model) || spec.Task != _task)
        {
            return $"this node serves {_model} ({_task.Name()}), not {spec.Model} ({spec.Task.Name()})";
        }

        if (!_devices.Any(d => d.ToString() == spec.Device))
        {
            return $"this node has no device {spec.Device} (it has {string.Join(", ", _devices)})";
        }

        return spec.FirstLayer < 0 || spec.LayerCount <= 0 || spec.FirstLayer + spec.LayerCount > _staged!.Layers.Count
            ? $"layers [{spec.FirstLayer}, {spec.FirstLayer + spec.LayerCount}) are not within the model's {_staged!.Layers.Count} layers"
            : null;
    }

    private void HandleTerminated(Terminated terminated)
    {
        if (_stagesByCoordinator.Remove(terminated.ActorRef, out var stages))
        {
            stages.ForEach(Context.Stop);
            return;
        }

        foreach (var remaining in _stagesByCoordinator.Values)
        {
            remaining.Remove(terminated.ActorRef);
        }
    }

    private sealed record Loaded(IStagedModel? Staged, Exception? Error);
}
