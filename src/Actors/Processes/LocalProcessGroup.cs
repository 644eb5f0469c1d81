namespace DistributedInference.Actors.Processes;

/// <summary>
/// N "processes" that are threads of one process: for a single process (N = 1), for tests, and for simulations of
/// what a launch of N processes does. Parts are not copied.
/// </summary>
public sealed class LocalProcessGroup : IProcessGroup, IDisposable
{
    private readonly Barrier _barrier;
    private readonly object?[] _slots;
    private readonly int[] _calls;

    private LocalProcessGroup(int size)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
        Size = size;
        _barrier = new Barrier(size);
        _slots = new object?[size];
        _calls = new int[size];
    }

    /// <inheritdoc />
    public int Size { get; }

    /// <summary>One <see cref="ProcessState"/> per member, to hand to one thread each.</summary>
    public static IReadOnlyList<ProcessState> Create(int size, Func<int, Models.Runtime.DeviceName>? device = null)
    {
        var group = new LocalProcessGroup(size);
        return Enumerable.Range(0, size).Select(rank => new ProcessState(rank, group, device?.Invoke(rank) ?? Models.Runtime.DeviceName.Cpu)).ToList();
    }

    /// <inheritdoc />
    public void Barrier(int rank, TimeSpan timeout)
    {
        var call = Interlocked.Increment(ref _calls[rank]);
        if (!_barrier.SignalAndWait(timeout))
        {
            throw new ProcessGroupTimeoutException(rank, timeout, Enumerable.Range(0, Size).Where(r => Volatile.Read(ref _calls[r]) < call).ToList());
        }
    }

    /// <inheritdoc />
    public IReadOnlyList<object?> AllGather(int rank, object? part, TimeSpan timeout)
    {
        _slots[rank] = part;
        Barrier(rank, timeout);
        var all = _slots.ToList();
        Barrier(rank, timeout);
        return all;
    }

    /// <summary>Disposes the barrier the members share.</summary>
    public void Dispose() => _barrier.Dispose();
}
