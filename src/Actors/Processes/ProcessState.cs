using System.Globalization;
using DistributedInference.Actors.Kernel.Membership;
using DistributedInference.Actors.Kernel.Rows;
using DistributedInference.Models;
using DistributedInference.Models.Runtime;

namespace DistributedInference.Actors.Processes;

/// <summary>
/// What code running in every launched process needs to know and do, in Accelerate's words (<c>PartialState</c>):
/// which process this is, its device, its share of the inputs, a barrier, and a gather that returns results in
/// input order with the padding removed (where Accelerate's "gather, then drop the last samples" misplaces rows
/// for 3 or more processes). <see cref="FromEnvironment"/> gives the state of a process started by <c>di launch</c>
/// (a group of one outside a launch). Disposing it leaves the group.
/// </summary>
public sealed class ProcessState : IDisposable, IAsyncDisposable
{
    /// <summary>How long <see cref="WaitForEveryone"/> and the gathers wait when no timeout is given.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromMinutes(30);

    /// <summary>How long <see cref="FromEnvironment"/> waits for every process of the launch to join.</summary>
    public static readonly TimeSpan DefaultJoinTimeout = TimeSpan.FromMinutes(2);

    private readonly IProcessGroup _group;
    private readonly object? _owned;

    /// <summary>Process <paramref name="processIndex"/> of <paramref name="group"/>, on <paramref name="device"/>.</summary>
    /// <param name="localProcessIndex">Its index on this machine (default: <paramref name="processIndex"/>).</param>
    /// <param name="ownsGroup">Disposing this state disposes the group (when it is disposable).</param>
    /// <exception cref="ArgumentOutOfRangeException">The index is not in 0..group.Size - 1.</exception>
    public ProcessState(int processIndex, IProcessGroup group, DeviceName device, int? localProcessIndex = null, bool ownsGroup = false)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(processIndex);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(processIndex, group.Size);
        ProcessIndex = processIndex;
        LocalProcessIndex = localProcessIndex ?? processIndex;
        _group = group;
        _owned = ownsGroup ? group : null;
        Device = device;
    }

    /// <summary>This process's index in the group, 0 to <see cref="NumProcesses"/> - 1 (torchrun's RANK).</summary>
    public int ProcessIndex { get; }

    /// <summary>This process's index on its machine (LOCAL_RANK).</summary>
    public int LocalProcessIndex { get; }

    /// <summary>How many processes the group has (WORLD_SIZE).</summary>
    public int NumProcesses => _group.Size;

    /// <summary>The device this process should use (DI_DEVICE, round-robin over <c>di launch --devices</c>).</summary>
    public DeviceName Device { get; }

    /// <summary>Whether this is process 0.</summary>
    public bool IsMainProcess => ProcessIndex == 0;

    /// <summary>Whether this is the process with the highest index.</summary>
    public bool IsLastProcess => ProcessIndex == NumProcesses - 1;

    /// <summary>A group of one: this process alone, on <paramref name="device"/> (cpu by default).</summary>
    public static ProcessState Single(DeviceName? device = null) => LocalProcessGroup.Create(1, _ => device ?? DeviceName.Cpu)[0];

    /// <summary>
    /// This process's state as <c>di launch</c> describes it in the environment (<see cref="ProcessEnvironment"/>:
    /// RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT, DI_DEVICE, DI_CLUSTER_SECRET). Without WORLD_SIZE (or
    /// with 1) it is a group of one, like Accelerate outside <c>accelerate launch</c>; otherwise it returns once every
    /// process of the launch has joined the group's cluster (<see cref="ClusterProcessGroup"/>).
    /// </summary>
    /// <exception cref="InvalidInputException">A variable is missing or malformed.</exception>
    /// <exception cref="ProcessGroupTimeoutException">Not every process joined within <see cref="DefaultJoinTimeout"/>.</exception>
    public static ProcessState FromEnvironment() => FromEnvironmentAsync().GetAwaiter().GetResult();

    /// <inheritdoc cref="FromEnvironment"/>
    public static async Task<ProcessState> FromEnvironmentAsync(TimeSpan? joinTimeout = null)
    {
        var deviceText = Environment.GetEnvironmentVariable(ProcessEnvironment.DeviceVariable);
        var device = string.IsNullOrWhiteSpace(deviceText) ? DeviceName.Cpu : DeviceName.Parse(deviceText.Trim());
        var size = Number(ProcessEnvironment.WorldSize, 1);
        if (size == 1)
        {
            return Single(device);
        }

        var rank = Number(ProcessEnvironment.Rank, null);
        var host = Environment.GetEnvironmentVariable(ProcessEnvironment.MasterAddr);
        if (string.IsNullOrWhiteSpace(host))
        {
            throw new InvalidInputException($"{ProcessEnvironment.MasterAddr} is not set (start the program with di launch)");
        }

        var group = await ClusterProcessGroup.StartAsync(
            rank, size, host.Trim(), Number(ProcessEnvironment.MasterPort, null), Environment.GetEnvironmentVariable(ClusterSecurity.SecretVariable), joinTimeout ?? DefaultJoinTimeout);
        return new ProcessState(rank, group, device, Number(ProcessEnvironment.LocalRank, rank), ownsGroup: true);
    }

    /// <summary>This process's share of a list: extras to the lowest ranks; with padding, filled with the last item.</summary>
    public IReadOnlyList<T> SplitBetweenProcesses<T>(IReadOnlyList<T> inputs, bool applyPadding = false) =>
        SplitRules.SplitList(inputs, NumProcesses, applyPadding)[ProcessIndex];

    /// <summary>This process's share of a tensor (rows), a list, a tuple or a dictionary of them.</summary>
    public object SplitBetweenProcesses(object inputs, bool applyPadding = false) =>
        SplitRules.Split(inputs, ProcessIndex, NumProcesses, applyPadding);

    /// <summary>Returns once every process has reached it (Accelerate's <c>wait_for_everyone</c>).</summary>
    /// <exception cref="ProcessGroupTimeoutException">Not every process arrived within <paramref name="timeout"/> (default <see cref="DefaultTimeout"/>), or one that had not arrived left the group (<see cref="ClusterProcessGroup.LeftGrace"/> after it left) or became unreachable; names those that did not.</exception>
    public void WaitForEveryone(TimeSpan? timeout = null) => _group.Barrier(ProcessIndex, timeout ?? DefaultTimeout);

    /// <summary>
    /// Every process's results (one per row of its share, padding included) joined in input order with the padding
    /// dropped; every process gets the whole result. <paramref name="inputLength"/> is the number of rows that were split.
    /// Across processes the items travel as values (<see cref="ProcessPayload"/>), at most 64 MiB per gather.
    /// </summary>
    /// <exception cref="ProcessGroupTimeoutException">Not every process arrived within <paramref name="timeout"/>.</exception>
    /// <exception cref="InvalidOperationException">The parts are too large for one message.</exception>
    public IReadOnlyList<T> Gather<T>(IReadOnlyList<T> mine, int inputLength, bool applyPadding = false, TimeSpan? timeout = null)
    {
        var all = _group.AllGather(ProcessIndex, mine, timeout ?? DefaultTimeout).Select(ProcessPayload.To<IReadOnlyList<T>>).ToList();
        return SplitRules.GatherList(all, inputLength, applyPadding);
    }

    /// <summary>As <see cref="Gather{T}"/> for tensors (rows), lists or dictionaries of them; gathered tensors are new, owned by the caller.</summary>
    public object Gather(object mine, int inputLength, bool applyPadding = false, TimeSpan? timeout = null) =>
        SplitRules.Gather(_group.AllGather(ProcessIndex, mine, timeout ?? DefaultTimeout).Select(p => p!).ToList(), inputLength, applyPadding);

    /// <summary>Every process's <paramref name="value"/>, in process order (Accelerate's <c>gather_object</c>); values ValueCodec cannot write travel as JSON.</summary>
    /// <exception cref="ProcessGroupTimeoutException">Not every process arrived within <paramref name="timeout"/>.</exception>
    public IReadOnlyList<T> GatherObject<T>(T value, TimeSpan? timeout = null) =>
        _group.AllGather(ProcessIndex, value, timeout ?? DefaultTimeout).Select(ProcessPayload.To<T>).ToList();

    /// <summary>
    /// Lets the main process run a block first (Accelerate's <c>main_process_first</c>): <c>using (state.MainProcessFirst()) { ... }</c>.
    /// The others wait at the start of the block until the main process has finished it.
    /// </summary>
    public IDisposable MainProcessFirst()
    {
        if (!IsMainProcess)
        {
            WaitForEveryone();
            return new Release(null);
        }

        return new Release(this);
    }

    /// <summary>Writes <paramref name="line"/> to standard output on the main process only.</summary>
    public void Print(string line)
    {
        if (IsMainProcess)
        {
            Console.Out.WriteLine(line);
        }
    }

    /// <summary>Leaves the group (the cluster of a launch); a group of one has nothing to leave.</summary>
    public void Dispose() => (_owned as IDisposable)?.Dispose();

    /// <inheritdoc cref="Dispose"/>
    public ValueTask DisposeAsync() => _owned is IAsyncDisposable disposable ? disposable.DisposeAsync() : ValueTask.CompletedTask;

    private static int Number(string variable, int? fallback)
    {
        var text = Environment.GetEnvironmentVariable(variable);
        if (string.IsNullOrWhiteSpace(text))
        {
            return fallback ?? throw new InvalidInputException($"{variable} is not set (start the program with di launch)");
        }

        return int.TryParse(text.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new InvalidInputException($"{variable}={text}: not a whole number");
    }

    private sealed class Release(ProcessState? state) : IDisposable
    {
        public void Dispose() => state?.WaitForEveryone();
    }
}
