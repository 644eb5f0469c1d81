namespace DistributedInference.Actors.Tests;

/// <summary>
/// Tests whose product runs on timers run alone, after the others: in-process clusters (heartbeats, failure detectors,
/// join, handshake and idle timeouts), simulated devices and stages that hold their thread for a set time, jobs with
/// short configured timeouts, and counts of TorchSharp's live tensors (a process-wide count). They decide by events,
/// counts and order, never by how long something took; but on 2 shared cores, tests beside them would starve the
/// timers (a heartbeat late enough marks a node unreachable, a handshake times out) or change the counts.
/// </summary>
[CollectionDefinition(Collection, DisableParallelization = true)]
public sealed class TimedTests
{
    public const string Collection = "timed";
}
