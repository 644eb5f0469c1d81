namespace DistributedInference.Actors.Processes;

/// <summary>
/// The processes of one launch, as each of them sees the group: a barrier and an all-gather. Every process must call
/// them in the same order; <see cref="LocalProcessGroup"/> (threads of one process) and
/// <see cref="ClusterProcessGroup"/> (processes of a <c>di launch</c>) implement it.
/// </summary>
public interface IProcessGroup
{
    /// <summary>How many processes the group has.</summary>
    int Size { get; }

    /// <summary>Returns once every process of the group has called it (the same number of times).</summary>
    /// <exception cref="ProcessGroupTimeoutException">Not every process arrived within <paramref name="timeout"/>; names those that did not.</exception>
    void Barrier(int rank, TimeSpan timeout);

    /// <summary>
    /// Every process's part, in rank order; every process must call it. Across processes the parts are copies (tensors
    /// new, owned by the caller; lists as <c>object?[]</c>).
    /// </summary>
    /// <exception cref="ProcessGroupTimeoutException">Not every process arrived within <paramref name="timeout"/>; names those that did not.</exception>
    IReadOnlyList<object?> AllGather(int rank, object? part, TimeSpan timeout);
}
