namespace DistributedInference.Actors.Pipeline;

/// <summary>
/// A stage double for simulations: holds its stage actor's own thread for a fixed compute time, as a blocking device
/// call would, and passes the payload on unchanged.
/// </summary>
public sealed class SimulatedStageWork : IStageWork
{
    private readonly TimeSpan _compute;

    public SimulatedStageWork(TimeSpan compute)
    {
        _compute = compute;
        Description = $"simulated, {compute.TotalMilliseconds} ms a micro-batch";
    }

    public string Description { get; }

    public object Run(object payload)
    {
        Thread.Sleep(_compute);
        return payload;
    }

    public void Dispose()
    {
    }
}
