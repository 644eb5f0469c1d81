using Akka.Actor;

namespace DistributedInference.Actors.Kernel.Supervision;

/// <summary>
/// The supervision policies of the runtime, declared once. Actors that hold a job's or a pipeline's state (jobs,
/// coordinators, pipeline stages) are never restarted: a restart would run their start-up again and replay messages
/// to their clients, so a failure stops them and whoever waits on them is told the job failed. Device actors recover
/// on their own (<see cref="Replica.DeviceRecovery"/>): they never let a forward pass's error escape.
/// </summary>
public static class Supervision
{
    /// <summary>A child that throws is stopped, never restarted; its parent (watching it) ends what it was doing.</summary>
    public static SupervisorStrategy StopOnFailure() => new OneForOneStrategy(Decider.From(_ => Directive.Stop));
}
