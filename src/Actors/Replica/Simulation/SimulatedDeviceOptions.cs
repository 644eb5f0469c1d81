namespace DistributedInference.Actors.Replica.Simulation;

/// <summary>How a simulated device behaves: how long a batch takes, what it computes, how it fails.</summary>
public sealed record SimulatedDeviceOptions
{
    /// <summary>
    /// What the device says it serves (<see cref="Replica.DeviceStatus.Spec"/>, described as <c>spec on name</c>); null: no
    /// named model (described as <c>simulated</c>).
    /// </summary>
    public Models.Tasks.ReplicaSpec? Spec { get; init; }

    /// <summary>Time per batch, whatever its size.</summary>
    public TimeSpan BatchLatency { get; init; } = TimeSpan.FromMilliseconds(10);

    /// <summary>Extra time per row of a batch.</summary>
    public TimeSpan RowLatency { get; init; } = TimeSpan.Zero;

    /// <summary>Turns a batch's rows into its results (one per row); by default the rows themselves.</summary>
    public Func<object, object> Compute { get; init; } = rows => rows;

    /// <summary>The n-th batches this device runs (counting from 1) that fail with a retryable error.</summary>
    public IReadOnlySet<int> FailingBatches { get; init; } = new HashSet<int>();

    /// <summary>The device stops itself (as a crashed node would) when it starts this batch (counting from 1).</summary>
    public int? StopAtBatch { get; init; }
}
