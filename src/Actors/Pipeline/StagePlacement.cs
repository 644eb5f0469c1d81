using Akka.Actor;

namespace DistributedInference.Actors.Pipeline;

/// <summary>Where a pipeline stage lives: a child of the coordinator, or an actor of a stage host on some node.</summary>
public abstract record StagePlacement
{
    public static IReadOnlyList<StagePlacement> Local(IReadOnlyList<Func<IStageWork>> work) =>
        work.Select(w => (StagePlacement)new LocalStage(w)).ToList();
}

/// <summary>A stage built in the coordinator's process by <see cref="Work"/>, on that stage's thread.</summary>
public sealed record LocalStage(Func<IStageWork> Work) : StagePlacement;

/// <summary>A stage built by the <see cref="Cluster.StageHost"/> <see cref="Host"/> (any node) from <see cref="Spec"/>.</summary>
public sealed record RemoteStage(IActorRef Host, StageSpec Spec) : StagePlacement;

/// <summary>
/// What a stage host builds: layers [<see cref="FirstLayer"/>, +<see cref="LayerCount"/>) of the model it serves
/// (which must be <see cref="Model"/>) on its device <see cref="Device"/> in <see cref="DType"/>.
/// </summary>
public sealed record StageSpec(int Stage, int FirstLayer, int LayerCount, string Device, string DType, bool Last, string Model);
