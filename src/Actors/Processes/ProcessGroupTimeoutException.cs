namespace DistributedInference.Actors.Processes;

/// <summary>
/// A barrier or gather of a process group was not reached by every process within its timeout, or (in a
/// <see cref="ClusterProcessGroup"/>) a process left the group or became unreachable while the others waited for it;
/// <see cref="Missing"/> names the processes (by index) that had not arrived or are unreachable.
/// </summary>
public sealed class ProcessGroupTimeoutException : TimeoutException
{
    /// <summary>The wait of process <paramref name="rank"/> failed after <paramref name="timeout"/> (its timeout, or as long as it waited before a process was lost): <paramref name="missing"/> had not arrived; <paramref name="detail"/> says more.</summary>
    public ProcessGroupTimeoutException(int rank, TimeSpan timeout, IReadOnlyList<int> missing, string? detail = null)
        : base($"process {rank} waited {timeout.TotalSeconds:0.#} s for the others: process(es) {string.Join(", ", missing)} did not arrive{(detail is null ? string.Empty : $" ({detail})")}")
    {
        Missing = missing;
    }

    /// <summary>The indices of the processes that had not arrived, in order.</summary>
    public IReadOnlyList<int> Missing { get; }
}
