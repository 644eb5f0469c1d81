using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace DistributedInference.Models.Runtime;

/// <summary>
/// Backs a CPU model's large weights with transparent huge pages on Linux (<c>madvise(MADV_HUGEPAGE)</c>, then
/// <c>MADV_COLLAPSE</c>, Linux 6.1 and later; madvise(2)). A decode step streams every weight once: on 4 KiB pages it
/// crosses a page, and misses the TLB, every 64 cache lines, where a 2 MiB page holds 512 times as much (measured in
/// docs/benchmarks.md). Best effort: where the kernel refuses (older than 6.1, THP set to <c>never</c>, no free huge page),
/// the memory stays as it was. Contents are unchanged either way.
/// </summary>
public static class HugePages
{
    private const int MadviseHugePage = 14;
    private const int MadviseCollapse = 25;
    private const long HugePage = 1L << 21;

    /// <summary>
    /// Collapses the whole 2 MiB pages inside each contiguous (or transposed contiguous) CPU tensor of at least 4 MiB (and under 2 GiB, the span
    /// TorchSharp exposes) into huge pages; other tensors are left alone.
    /// </summary>
    /// <param name="tensors">Tensors to back (a model's parameters); their values are not changed.</param>
    /// <returns>Bytes now on huge pages (0 off Linux, or where the kernel refused).</returns>
    public static unsafe long Collapse(IEnumerable<Tensor> tensors)
    {
        if (!OperatingSystem.IsLinux())
        {
            return 0;
        }

        var collapsed = 0L;
        foreach (var tensor in tensors)
        {
            var bytes = tensor.NumberOfElements * tensor.ElementSize;
            if (tensor.device_type != DeviceType.CPU || bytes < 2 * HugePage || bytes > int.MaxValue || DenseStart(tensor) is not { } start)
            {
                continue;
            }

            var from = (start + HugePage - 1) & ~(HugePage - 1);
            var length = ((start + bytes) & ~(HugePage - 1)) - from;
            if (length <= 0)
            {
                continue;
            }

            _ = madvise((IntPtr)from, (UIntPtr)(ulong)length, MadviseHugePage);
            if (madvise((IntPtr)from, (UIntPtr)(ulong)length, MadviseCollapse) == 0)
            {
                collapsed += length;
            }
        }

        return collapsed;
    }

    /// <summary>
    /// The address of a CPU tensor's first byte when its elements fill one block of memory: a contiguous tensor, or a
    /// transposed matrix (GPT-2's Conv1D weight), whose transpose is contiguous; null for any other layout.
    /// </summary>
    internal static unsafe long? DenseStart(Tensor tensor)
    {
        using var dense = tensor.is_contiguous() ? tensor.alias() : tensor.dim() == 2 ? tensor.t() : null;
        return dense is null || !dense.is_contiguous() || dense.NumberOfElements == 0
            ? null
            : (long)Unsafe.AsPointer(ref MemoryMarshal.GetReference(dense.bytes));
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int madvise(IntPtr address, UIntPtr length, int advice);
}
