namespace DistributedInference.Actors.Processes;

/// <summary>
/// A process reached round <paramref name="Round"/> of its group (a barrier or a gather) with its part, already
/// encoded (<see cref="ProcessPayload"/>); sent to the main process's <see cref="ProcessGroupCoordinator"/>, which
/// answers <see cref="ProcessesReleased"/> once every process has arrived, or <see cref="ProcessRoundRefused"/>.
/// </summary>
public sealed record ProcessArrived(int Round, int Rank, byte[] Part);

/// <summary>Every process arrived at <paramref name="Round"/>: their parts, in process order.</summary>
public sealed record ProcessesReleased(int Round, IReadOnlyList<byte[]> Parts);

/// <summary>Round <paramref name="Round"/> cannot complete (parts too large for one message, a rank out of range); the reason in one line.</summary>
public sealed record ProcessRoundRefused(int Round, string Reason);

/// <summary>Which processes have arrived at <paramref name="Round"/> (asked by a process whose wait timed out).</summary>
public sealed record GetProcessArrivals(int Round);

/// <summary>The processes that have arrived at <paramref name="Round"/>, in process order.</summary>
public sealed record ProcessArrivals(int Round, IReadOnlyList<int> Ranks);
