using Akka.Actor;
using DistributedInference.Actors.Kernel.Wire;
using DistributedInference.Actors.Pipeline;
using DistributedInference.Models.Runtime;
using DistributedInference.Models.Staging;
using DistributedInference.Models.Tasks;

namespace DistributedInference.Actors.Cluster.Stages;

/// <summary>Asks a node's <see cref="StageHost"/> what it can host: answered with <see cref="StageHostInfo"/>.</summary>
public sealed record GetStageHostInfo : IWireMessage
{
    public static readonly GetStageHostInfo Instance = new();
}

/// <summary>
/// A stage host's devices, the model it serves (its weights, <see cref="ModelIdentity"/>) for which task, that model's
/// layers (what a planner cuts), and each device's free memory in bytes when it answered (same order as
/// <see cref="Devices"/>; -1 = unknown; null from hosts that do not say).
/// </summary>
public sealed record StageHostInfo(IReadOnlyList<string> Devices, ModelIdentity Model, InferenceTask Task, IReadOnlyList<StagedLayerInfo> Layers, IReadOnlyList<long>? FreeBytes = null) : IWireMessage;

/// <summary>
/// Asks a stage host to build a stage for <see cref="Coordinator"/>: answered to the coordinator with
/// <see cref="StageHosted"/> at once, then <see cref="StageReady"/> or <see cref="StageLoadFailed"/> from the stage.
/// </summary>
public sealed record HostStage(StageSpec Spec, IActorRef Coordinator) : IWireMessage;

/// <summary>
/// What a stage host builds: layers [<see cref="FirstLayer"/>, +<see cref="LayerCount"/>) of the model it serves
/// (which must be <see cref="Model"/>, staged for <see cref="Task"/>: a host serving other weights or another task
/// refuses) on its device <see cref="Device"/> in <see cref="DType"/>.
/// </summary>
public sealed record StageSpec(int Stage, int FirstLayer, int LayerCount, string Device, Precision DType, bool Last, ModelIdentity Model, InferenceTask Task);

/// <summary>
/// A pipeline stage placed on a node's <see cref="StageHost"/> (<see cref="RemoteStage.Host"/>): asked for with
/// <see cref="HostStage"/>, built from <see cref="Spec"/> (its stage number is the one the coordinator asks for).
/// </summary>
public sealed record HostedStage(IActorRef Host, StageSpec Spec) : RemoteStage(Host)
{
    /// <inheritdoc/>
    public override void Request(int stage, IActorRef coordinator) => Host.Tell(new HostStage(Spec with { Stage = stage }, coordinator), coordinator);
}
