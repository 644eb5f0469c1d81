namespace DistributedInference.Actors.Pipeline;

/// <summary>
/// A pipeline step failed because a stage was lost, and the pipeline was planned again over the stages left: what the
/// old stages held between steps (key/value caches) is gone, so the caller must start its state again (resume).
/// </summary>
public sealed class StageStateLostException : Exception
{
    public StageStateLostException(string message)
        : base(message)
    {
    }

    public StageStateLostException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
