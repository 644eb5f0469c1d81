namespace DistributedInference.Models.Serving.Batching;

/// <summary>
/// An <see cref="IModelExecutor"/>'s key/value cache lost its contents (a pipeline stage holding a share of it was lost
/// and the pipeline planned again): no block holds what the scheduler thinks it holds, so every sequence must be
/// computed again and no cached prefix may be reused.
/// </summary>
public sealed class KvCacheLostException : Exception
{
    public KvCacheLostException(string message)
        : base(message)
    {
    }

    public KvCacheLostException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
