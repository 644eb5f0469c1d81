using System.Runtime.InteropServices;

namespace DistributedInference.Actors.Kernel.Memory;

/// <summary>
/// Gives a long-running process's free memory back to the operating system once a burst of work has left: one
/// aggressive, compacting, blocking garbage collection (the managed heap, whose generation-2 budget otherwise grows over
/// the first jobs a node serves and stays), then glibc's <c>malloc_trim(0)</c> (the native heap: libtorch's tensors and
/// the runtime's own allocations come from glibc arenas, one per thread that allocates, and memory freed inside an
/// arena stays in the process's RSS until trimmed; measured on a node serving sequential <c>--join</c> clients, the
/// arenas grew 25 MB over 25 clients that left nothing behind; docs/design.md). Off glibc (musl, macOS) only the
/// collection runs. Tens of milliseconds on a node's heap; call it when a burst of work has ended, never per row.
/// </summary>
public static class ProcessMemory
{
    private static bool _trimUnavailable;

    /// <summary>Collects and compacts the managed heap, then trims the native heap where glibc runs the process.</summary>
    /// <returns>The GC's committed bytes before and after, and whether the native heap was trimmed.</returns>
    public static Released Release()
    {
        var committed = GC.GetGCMemoryInfo().TotalCommittedBytes;
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        var trimmed = false;
        if (OperatingSystem.IsLinux() && !_trimUnavailable)
        {
            try
            {
                trimmed = MallocTrim(0) != 0;
            }
            catch (EntryPointNotFoundException)
            {
                _trimUnavailable = true;
            }
        }

        return new Released(committed, GC.GetGCMemoryInfo().TotalCommittedBytes, trimmed);
    }

    /// <summary>What <see cref="Release"/> did.</summary>
    /// <param name="CommittedBefore">The GC's committed bytes before the collection.</param>
    /// <param name="CommittedAfter">The GC's committed bytes after it.</param>
    /// <param name="NativeTrimmed">Whether <c>malloc_trim</c> gave memory back (false off glibc, or nothing to give).</param>
    public readonly record struct Released(long CommittedBefore, long CommittedAfter, bool NativeTrimmed);

    // glibc: int malloc_trim(size_t pad); returns 1 when memory was released to the system.
    [DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int MallocTrim(nuint pad);
}
