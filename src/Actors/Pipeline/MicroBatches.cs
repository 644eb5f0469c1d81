namespace DistributedInference.Actors.Pipeline;

/// <summary>How many micro-batches a pipeline call is cut into: accelerate's <c>num_chunks</c>.</summary>
public static class MicroBatches
{
    /// <summary>
    /// <paramref name="numChunks"/> as given, else one per stage: accelerate's <c>prepare_pippy</c> default (the number of
    /// processes, each holding one stage), the fewest that keep every stage busy once the pipe is full.
    /// </summary>
    public static int NumChunks(int? numChunks, int stages) => numChunks ?? stages;
}
