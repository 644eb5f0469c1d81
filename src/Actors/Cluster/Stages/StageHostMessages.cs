using Akka.Actor;
using DistributedInference.Actors.Pipeline;
using DistributedInference.Models.Staging;

namespace DistributedInference.Actors.Cluster.Stages;

/// <summary>Asks a node's <see cref="StageHost"/> what it can host: answered with <see cref="StageHostInfo"/>.</summary>
public sealed record GetStageHostInfo
{
    public static readonly GetStageHostInfo Instance = new();
}

/// <summary>
/// A stage host's devices, the model it serves and that model's layers (what a planner cuts), and each device's free
/// memory in bytes when it answered (same order as <see cref="Devices"/>; -1 = unknown; null from hosts that do not say).
/// </summary>
public sealed record StageHostInfo(IReadOnlyList<string> Devices, string Model, IReadOnlyList<StagedLayerInfo> Layers, IReadOnlyList<long>? FreeBytes = null);

/// <summary>
/// Asks a stage host to build a stage for <see cref="Coordinator"/>: answered to the coordinator with
/// <see cref="StageHosted"/> at once, then <see cref="StageReady"/> or <see cref="StageLoadFailed"/> from the stage.
/// </summary>
public sealed record HostStage(StageSpec Spec, IActorRef Coordinator);
