namespace DistributedInference.Actors.Kernel.Rows;

/// <summary>
/// Accelerate's <c>split_between_processes</c> and the gather that undoes it, as pure functions: split an input's
/// rows across ranks (extras to the lowest ranks, optional padding with the last row), and put per-rank results
/// back in input order with the padding dropped, whatever the number of ranks.
/// </summary>
public static class SplitRules
{
    /// <summary>What rank <paramref name="rank"/> of <paramref name="ranks"/> gets.</summary>
    public static object Split(object input, int rank, int ranks, bool applyPadding)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rank);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(rank, ranks);
        var share = Share.Plan(Rows.Count(input), ranks, applyPadding)[rank];
        return Rows.Pad(Rows.Slice(input, share.Start, share.Count), input, share.Padding);
    }

    /// <summary>Every rank's part, in rank order.</summary>
    public static IReadOnlyList<object> SplitAll(object input, int ranks, bool applyPadding) =>
        Enumerable.Range(0, ranks).Select(rank => Split(input, rank, ranks, applyPadding)).ToList();

    /// <summary>Typed convenience for lists: what each rank gets, in rank order.</summary>
    public static IReadOnlyList<IReadOnlyList<T>> SplitList<T>(IReadOnlyList<T> items, int ranks, bool applyPadding) =>
        Share.Plan(items.Count, ranks, applyPadding)
            .Select(share => (IReadOnlyList<T>)[.. items.Skip(share.Start).Take(share.Count), .. Enumerable.Repeat(items.Count > 0 ? items[^1] : default!, share.Padding)])
            .ToList();

    /// <summary>
    /// Joins per-rank results (rank order, one row per row the rank was given, padding included) into results in input
    /// order with the padding removed. <paramref name="length"/> is the number of rows of the original input.
    /// </summary>
    public static object Gather(IReadOnlyList<object> perRank, int length, bool applyPadding)
    {
        var shares = Share.Plan(length, perRank.Count, applyPadding);
        var kept = new List<object>();
        for (var rank = 0; rank < perRank.Count; rank++)
        {
            var rows = Rows.Count(perRank[rank]);
            if (rows != shares[rank].PaddedCount)
            {
                throw new ArgumentException($"rank {rank} returned {rows} rows for the {shares[rank].PaddedCount} it was given", nameof(perRank));
            }

            if (shares[rank].Count > 0)
            {
                kept.Add(Rows.Slice(perRank[rank], 0, shares[rank].Count));
            }
        }

        return kept.Count == 0 ? Rows.Slice(perRank[0], 0, 0) : Rows.Concat(kept);
    }

    /// <summary>Typed convenience for lists: per-rank results back in input order, padding dropped.</summary>
    public static IReadOnlyList<T> GatherList<T>(IReadOnlyList<IReadOnlyList<T>> perRank, int length, bool applyPadding) =>
        Share.Plan(length, perRank.Count, applyPadding).SelectMany(share => perRank[share.Rank].Take(share.Count)).ToList();
}
