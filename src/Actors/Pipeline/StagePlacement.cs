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

/// <summary>
/// A stage built by an actor on another node, <see cref="Host"/>, which the coordinator watches until the stage exists:
/// <see cref="Request"/> asks it for stage <c>stage</c> of the coordinator given; the host answers the coordinator
/// <see cref="StageHosted"/> (or <see cref="StageLoadFailed"/>), then the stage <see cref="StageReady"/>. The cluster's
/// stage hosts are one such placement; the coordinator knows only this.
/// </summary>
public abstract record RemoteStage(IActorRef Host) : StagePlacement
{
    /// <summary>Asks <see cref="Host"/> to build stage <paramref name="stage"/> for <paramref name="coordinator"/>.</summary>
    public abstract void Request(int stage, IActorRef coordinator);
}
