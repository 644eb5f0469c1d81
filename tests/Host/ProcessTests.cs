namespace DistributedInference.Host.Tests;

/// <summary>
/// Test classes that start processes (<c>di</c>, <c>di node</c> clusters, <c>di launch</c> and what it launches) run
/// one class at a time: several clusters starting at once on 2 shared cores starve each other's heartbeats and
/// joins. They may still run beside the in-process classes, which start no process.
/// </summary>
[CollectionDefinition(Collection)]
public sealed class ProcessTests
{
    public const string Collection = "processes";
}
