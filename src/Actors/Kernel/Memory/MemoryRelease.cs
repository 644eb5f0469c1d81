using System.Runtime.InteropServices;

namespace DistributedInference.Actors.Kernel.Memory;

/// <summary>
/// Gives a long-running process's free memory back to the operating system once a burst of work has left: one
/// aggressive, compacting, blocking garbage collection (the managed heap, whose generation-2 budget otherwise grows over
/// the first jobs a node serves and stays), then glibc's <c>malloc_trim(0)</c> (the native heap: libtorch's tensors and
/// the runtime's own allocations come from glibc arenas, one per thread that allocates, and memory freed inside an
/// arena stays in the process's RSS until trimmed; measured on a node serving sequential <c>--join</c> clients, the
/// arenas grew 25 MB over 25 clients that left nothing behind; docs/design.md). Off glibc (musl, macOS) only the
/// collection runs. Not free: <c>malloc_trim</c> holds each arena's lock while it walks it, so a thread allocating from
/// that arena waits (measured on a 2-core machine under load: 76 ms with 256 MiB free in a fragmented heap, 632 ms with
/// 2 GiB, 5-26 ms with nothing to give back); call it when a burst of work has ended, seldom, never per row.
/// </summary>
public static class MemoryRelease
{
    private static bool _trimUnavailable;

    /// <summary>Collects and compacts the managed heap, then trims the native heap where glibc runs the process.</summary>
    /// <returns>The GC's committed bytes before and after, and whether the native heap was trimmed.</returns>
    public static Released Run()
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
            catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
            {
                _trimUnavailable = true;
            }
        }

        return new Released(committed, GC.GetGCMemoryInfo().TotalCommittedBytes, trimmed);
    }

    /// <summary>What <see cref="Run"/> did.</summary>
    /// <param name="CommittedBefore">The GC's committed bytes before the collection.</param>
    /// <param name="CommittedAfter">The GC's committed bytes after it.</param>
    /// <param name="NativeTrimmed">Whether <c>malloc_trim</c> gave memory back (false off glibc, or nothing to give).</param>
    public readonly record struct Released(long CommittedBefore, long CommittedAfter, bool NativeTrimmed);

    // glibc: int malloc_trim(size_t pad); returns 1 when memory was released to the system.
    [DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int MallocTrim(nuint pad);
}
