namespace DistributedInference.Models.Tests;

/// <summary>
/// Tests that measure the whole process run alone, after the others: the resident peak (VmHWM) of a stage's load
/// counts every test's allocations, so a test beside it allocating tens of megabytes would be counted as the stage's.
/// </summary>
[CollectionDefinition(Collection, DisableParallelization = true)]
public sealed class AloneTests
{
    public const string Collection = "alone";
}
