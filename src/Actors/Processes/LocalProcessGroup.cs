namespace DistributedInference.Actors.Processes;

/// <summary>
/// N "processes" that are threads of one process: for a single process (N = 1), for tests, and for simulations of
/// what a launch of N processes does.
/// </summary>
public sealed class LocalProcessGroup : IProcessGroup, IDisposable
{
    private readonly Barrier _barrier;
    private readonly object?[] _slots;

    private LocalProcessGroup(int size)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
        Size = size;
        _barrier = new Barrier(size);
        _slots = new object?[size];
    }

    public int Size { get; }

    /// <summary>One <see cref="ProcessState"/> per member, to hand to one thread each.</summary>
    public static IReadOnlyList<ProcessState> Create(int size, Func<int, Models.Runtime.DeviceName>? device = null)
    {
        var group = new LocalProcessGroup(size);
        return Enumerable.Range(0, size).Select(rank => new ProcessState(rank, group, device?.Invoke(rank) ?? Models.Runtime.DeviceName.Cpu)).ToList();
    }

    public void Barrier(int rank) => _barrier.SignalAndWait();

    public IReadOnlyList<object> AllGather(int rank, object part)
    {
        _slots[rank] = part;
        _barrier.SignalAndWait();
        var all = _slots.Select(s => s!).ToList();
        _barrier.SignalAndWait();
        return all;
    }

    public void Dispose() => _barrier.Dispose();
}
