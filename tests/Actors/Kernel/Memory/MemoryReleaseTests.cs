using System.Runtime.InteropServices;
using DistributedInference.Actors.Kernel.Memory;

namespace DistributedInference.Actors.Tests.Kernel.Memory;

/// <summary>
/// Memory a process freed goes back to the operating system when <see cref="MemoryRelease.Run"/> runs: glibc keeps
/// the free chunks of its heap in the process (in the RSS) until the heap is trimmed, which is what a node serving
/// clients for a month showed as growth (docs/design.md).
/// Alone (no test of this assembly runs beside it): other threads allocating from the same glibc arena would reuse the
/// freed chunks the test measures.
/// </summary>
[Collection(TimedTests.Collection)]
public sealed class MemoryReleaseTests
{
    [Fact]
    public void Native_memory_freed_inside_the_heap_leaves_the_resident_set()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        // 1600 blocks of 64 KiB (under glibc's mmap threshold: they come from the heap, not from mmap of their own), all
        // freed but the last, which pins the heap's top so free() cannot shrink it: 100 MiB free inside the heap.
        const int Blocks = 1600;
        const int Size = 64 * 1024;
        var blocks = new IntPtr[Blocks];
        var thread = new Thread(() =>
        {
            var ones = Enumerable.Repeat((byte)1, Size).ToArray();
            for (var i = 0; i < Blocks; i++)
            {
                blocks[i] = Marshal.AllocHGlobal(Size);
                Marshal.Copy(ones, 0, blocks[i], Size);
            }

            for (var i = 0; i < Blocks - 1; i++)
            {
                Marshal.FreeHGlobal(blocks[i]);
            }
        });
        thread.Start();
        thread.Join();

        try
        {
            // Measured over the mappings that held the blocks only: other tests of this assembly run meanwhile.
            var held = blocks.SkipLast(1).ToArray();
            var before = ResidentKiB(held);
            var released = MemoryRelease.Run();
            var after = ResidentKiB(held);

            Assert.True(before > 90 * 1024, $"the freed blocks' mappings hold {before} KiB: the test did not set up what it means to");
            Assert.True(released.NativeTrimmed, "malloc_trim gave nothing back");
            Assert.True(before - after > 80 * 1024, $"RSS of the heap that held the freed 100 MiB: {before} -> {after} KiB: it stayed resident");
        }
        finally
        {
            Marshal.FreeHGlobal(blocks[^1]);
        }
    }

    // The resident KiB of the mappings (/proc/self/smaps) that contain any of the addresses.
    private static long ResidentKiB(IReadOnlyCollection<IntPtr> addresses)
    {
        long total = 0;
        var counted = false;
        foreach (var line in File.ReadLines("/proc/self/smaps"))
        {
            var dash = line.IndexOf('-', StringComparison.Ordinal);
            var space = line.IndexOf(' ', StringComparison.Ordinal);
            if (dash > 0 && space > dash && ulong.TryParse(line.AsSpan(0, dash), System.Globalization.NumberStyles.HexNumber, null, out var start)
                && ulong.TryParse(line.AsSpan(dash + 1, space - dash - 1), System.Globalization.NumberStyles.HexNumber, null, out var end))
            {
                counted = addresses.Any(address => (ulong)address >= start && (ulong)address < end);
            }
            else if (counted && line.StartsWith("Rss:", StringComparison.Ordinal))
            {
                total += long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        return total;
    }
}
