namespace DistributedInference.Actors.Pipeline;

/// <summary>What one pipeline stage computes: built on its stage actor's thread, run there for each micro-batch.</summary>
public interface IStageWork : IDisposable
{
    string Description { get; }

    /// <summary>Turns a micro-batch's payload into the payload for the next stage (or, on the last stage, result rows).</summary>
    object Run(object payload);
}
