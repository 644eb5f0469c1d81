namespace DistributedInference.Actors.Kernel.Requests;

/// <summary>A job ended without results for a reason other than its input (devices lost, retries exhausted, cancelled).</summary>
public sealed class JobFailedException : Exception
{
    public JobFailedException(string message)
        : base(message)
    {
    }

    public JobFailedException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
