namespace DistributedInference.Actors.Kernel.Rows;

/// <summary>
/// What one rank gets of an input of rows: rows [Start, Start + Count), then <see cref="Padding"/> copies of the
/// input's last row when padding was asked for.
/// </summary>
public sealed record Share(int Rank, int Start, int Count, int Padding)
{
    public int PaddedCount => Count + Padding;

    /// <summary>
    /// Accelerate's rule: with N ranks and L rows, q, e = divmod(L, N); rank r gets rows [r*q + min(r, e), +q + (r &lt; e)).
    /// With padding every rank is filled up to q + (e &gt; 0) rows with copies of the global last row; an empty input
    /// stays empty (accelerate raises IndexError there).
    /// </summary>
    public static IReadOnlyList<Share> Plan(int length, int ranks, bool applyPadding)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(ranks);
        var (perRank, extras) = Math.DivRem(length, ranks);
        var largest = perRank + (extras > 0 ? 1 : 0);
        var shares = new Share[ranks];
        for (var rank = 0; rank < ranks; rank++)
        {
            var count = perRank + (rank < extras ? 1 : 0);
            var padding = applyPadding && length > 0 ? largest - count : 0;
            shares[rank] = new Share(rank, (rank * perRank) + Math.Min(rank, extras), count, padding);
        }

        return shares;
    }
}
