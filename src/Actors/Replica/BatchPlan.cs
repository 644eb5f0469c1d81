using DistributedInference.Actors.Kernel.Rows;

namespace DistributedInference.Actors.Replica;

/// <summary>
/// Rows [<see cref="Start"/>, + <see cref="Count"/>) of a job's input followed by <see cref="Padding"/> copies of its
/// last row: what one forward pass on one device runs.
/// </summary>
public sealed record Batch(int Start, int Count, int Padding)
{
    /// <summary>Rows the device runs, padding included.</summary>
    public int Size => Count + Padding;
}

/// <summary>
/// How a replica job's rows become batches: accelerate's <c>split_between_processes</c> over the devices
/// (<see cref="Share.Plan"/>: extras to the lowest ranks, optional padding with the last row), each device's share cut
/// into batches of at most <c>max_batch_size</c> rows, in order. A pure function: the same rows, devices and options
/// always give the same batches.
/// </summary>
public static class BatchPlan
{
    /// <summary>Each device's batches, in device (rank) order.</summary>
    /// <exception cref="ArgumentOutOfRangeException">No devices, or a batch size that is not positive.</exception>
    public static IReadOnlyList<IReadOnlyList<Batch>> Cut(int rows, int devices, int maxBatchSize, bool applyPadding)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxBatchSize);
        return Share.Plan(rows, devices, applyPadding).Select(share => (IReadOnlyList<Batch>)Cut(share, maxBatchSize).ToList()).ToList();
    }

    private static IEnumerable<Batch> Cut(Share share, int maxBatchSize)
    {
        for (var offset = 0; offset < share.PaddedCount; offset += maxBatchSize)
        {
            var size = Math.Min(maxBatchSize, share.PaddedCount - offset);
            var real = Math.Clamp(share.Count - offset, 0, size);
            yield return new Batch(share.Start + Math.Min(offset, share.Count), real, size - real);
        }
    }
}
