namespace DistributedInference.Models;

/// <summary>
/// Input the user can fix: a missing file, a corrupt tensor, an unknown model or device. Front ends print its
/// message as one line and exit non-zero, never a stack trace.
/// </summary>
public sealed class InvalidInputException : Exception
{
    public InvalidInputException(string message)
        : base(message)
    {
    }

    public InvalidInputException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
