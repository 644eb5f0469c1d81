namespace DistributedInference.Models.Partitioning;

/// <summary>
/// What one layer of a staged model needs on its device for a run: its weights in the run's dtype, its key/value cache
/// for every row in flight at the longest length (generate), and an estimate of the activations it makes (the largest
/// temporaries of one forward over the rows of one call).
/// </summary>
public sealed record LayerMemory(long Weights, long Cache, long Activations)
{
    /// <summary>Weights + cache + activations.</summary>
    public long Total => Weights + Cache + Activations;
}
