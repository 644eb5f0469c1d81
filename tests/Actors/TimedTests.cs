namespace DistributedInference.Actors.Tests;

/// <summary>Tests that measure time run alone, after the others: on a 2-core machine parallel tests skew timings.</summary>
[CollectionDefinition(Collection, DisableParallelization = true)]
public sealed class TimedTests
{
    public const string Collection = "timed";
}
