using DistributedInference.Actors.Splitting;
using DistributedInference.Models.Runtime;

namespace DistributedInference.Actors.Processes;

/// <summary>
/// What code running in every launched process needs to know and do, in Accelerate's words (<c>PartialState</c>):
/// which process this is, its device, its share of the inputs, a barrier, and a gather that returns results in
/// input order with the padding removed (where Accelerate's "gather, then drop the last samples" misplaces rows
/// for 3 or more processes).
/// </summary>
public sealed class ProcessState
{
    private readonly IProcessGroup _group;

    public ProcessState(int processIndex, IProcessGroup group, DeviceName device)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(processIndex);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(processIndex, group.Size);
        ProcessIndex = processIndex;
        _group = group;
        Device = device;
    }

    public int ProcessIndex { get; }

    public int NumProcesses => _group.Size;

    public DeviceName Device { get; }

    public bool IsMainProcess => ProcessIndex == 0;

    public bool IsLastProcess => ProcessIndex == NumProcesses - 1;

    /// <summary>A group of one: this process alone, on <paramref name="device"/> (cpu by default).</summary>
    public static ProcessState Single(DeviceName? device = null) => LocalProcessGroup.Create(1, _ => device ?? DeviceName.Cpu)[0];

    /// <summary>This process's share of a list: extras to the lowest ranks; with padding, filled with the last item.</summary>
    public IReadOnlyList<T> SplitBetweenProcesses<T>(IReadOnlyList<T> inputs, bool applyPadding = false) =>
        SplitRules.SplitList(inputs, NumProcesses, applyPadding)[ProcessIndex];

    /// <summary>This process's share of a tensor (rows), a list, a tuple or a dictionary of them.</summary>
    public object SplitBetweenProcesses(object inputs, bool applyPadding = false) =>
        SplitRules.Split(inputs, ProcessIndex, NumProcesses, applyPadding);

    /// <summary>Returns once every process has reached it.</summary>
    public void WaitForEveryone() => _group.Barrier(ProcessIndex);

    /// <summary>
    /// Every process's results (one per row of its share, padding included) joined in input order with the padding
    /// dropped; every process gets the whole result. <paramref name="inputLength"/> is the number of rows that were split.
    /// </summary>
    public IReadOnlyList<T> Gather<T>(IReadOnlyList<T> mine, int inputLength, bool applyPadding = false)
    {
        var all = _group.AllGather(ProcessIndex, mine).Cast<IReadOnlyList<T>>().ToList();
        return SplitRules.GatherList(all, inputLength, applyPadding);
    }

    /// <summary>As <see cref="Gather{T}"/> for tensors, lists or dictionaries of them.</summary>
    public object Gather(object mine, int inputLength, bool applyPadding = false) =>
        SplitRules.Gather(_group.AllGather(ProcessIndex, mine), inputLength, applyPadding);
}
