using TorchSharp;

namespace DistributedInference.Models.Runtime;

/// <summary>
/// libtorch's intra-op threads when several device actors share the CPU. Each CPU device actor runs its ops with
/// libtorch's thread pool, whose size is global; left at one thread per core, two CPU replicas on a 2-core machine
/// would run four busy threads on two cores, and every parallel op would wait at its barrier for a descheduled
/// thread. The cores are divided instead: each of n CPU device actors gets cores / n threads (at least one).
/// </summary>
public static class CpuThreads
{
    /// <summary>
    /// Sets libtorch's intra-op threads to cores / (CPU devices in <paramref name="devices"/>), at least one; leaves
    /// them alone when at most one device is a CPU, or when <c>OMP_NUM_THREADS</c> is set (the user chose).
    /// Call before the device actors start: each thread reads the setting at its first parallel op.
    /// </summary>
    /// <returns>The intra-op threads now in force.</returns>
    public static int ShareAmong(IReadOnlyList<DeviceName> devices)
    {
        var cpus = devices.Count(d => !d.IsCuda);
        if (cpus > 1 && string.IsNullOrEmpty(Environment.GetEnvironmentVariable("OMP_NUM_THREADS")))
        {
            LibTorch.Initialize();
            torch.set_num_threads(Math.Max(1, Environment.ProcessorCount / cpus));
        }

        return cpus > 0 ? torch.get_num_threads() : 0;
    }

    /// <summary>
    /// Leaves one core to the process's own work beside a single CPU device actor (reading, checking and writing a
    /// batch's requests): libtorch's intra-op threads become cores - 1 (at least one). A parallel op whose threads share
    /// the cores with other busy threads waits at its barrier for a descheduled one; measured on this project's 2-core
    /// machine, a batch of 20,000 tiny embedding requests took 46 s with 2 intra-op threads and 6 s with 1. Leaves them
    /// alone when several devices are CPUs (<see cref="ShareAmong"/> divides the cores), or <c>OMP_NUM_THREADS</c> is set.
    /// </summary>
    /// <returns>The intra-op threads now in force (0 when no device is a CPU).</returns>
    public static int LeaveOneCore(IReadOnlyList<DeviceName> devices)
    {
        var cpus = devices.Count(d => !d.IsCuda);
        if (cpus == 1 && string.IsNullOrEmpty(Environment.GetEnvironmentVariable("OMP_NUM_THREADS")))
        {
            LibTorch.Initialize();
            torch.set_num_threads(Math.Max(1, Environment.ProcessorCount - 1));
        }

        return cpus > 0 ? torch.get_num_threads() : 0;
    }

    /// <summary>
    /// libtorch's intra-op threads for each of <paramref name="processes"/> processes started together on this machine,
    /// each with <paramref name="devices"/>: the cores divided among all their CPU devices, at least one (to give them as
    /// <c>OMP_NUM_THREADS</c>). Processes that each used every core would run cores x processes busy threads, and every
    /// parallel op would wait at its barrier for a descheduled one. accelerate's <c>launch</c> does the same
    /// (<c>--num_cpu_threads_per_process</c>, by default the physical cores / local processes, as
    /// <c>OMP_NUM_THREADS</c>). Null when no device is a CPU or <c>OMP_NUM_THREADS</c> is set (the user chose).
    /// </summary>
    public static int? PerProcess(int processes, IReadOnlyList<DeviceName> devices)
    {
        var cpus = devices.Count(d => !d.IsCuda);
        return cpus == 0 || processes <= 0 || !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("OMP_NUM_THREADS"))
            ? null
            : Math.Max(1, Environment.ProcessorCount / (processes * cpus));
    }
}
