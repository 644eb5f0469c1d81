using static TorchSharp.torch;

namespace DistributedInference.Models.Serving.Batching;

/// <summary>
/// Where one forward pass of rows that each add <see cref="NewTokens"/> positions reads and writes a paged cache: pure
/// arithmetic from the rows' block tables (vLLM's slot mapping), so the engine plans once and every holder of a share of
/// the layers (the device's <see cref="PagedKvStore"/>, or each pipeline stage's) runs the same plan. Each row's past
/// positions [0, past) are right-aligned so that the new positions of every row share columns [P, P + new) with P the
/// longest past; columns before a shorter row's past are padding, hidden by the mask.
/// </summary>
/// <param name="Rows">Rows of the pass.</param>
/// <param name="Past">P: the longest past.</param>
/// <param name="NewTokens">Positions each row adds.</param>
/// <param name="PastSlots">Rows x P slot numbers (block x block size + offset) of each row's past, right-aligned; 0 in padding columns.</param>
/// <param name="NewSlots">Rows x new tokens slot numbers the new positions are written to.</param>
/// <param name="Mask">Rows x (P + new tokens): 1 = real, 0 = padding.</param>
public sealed record PagedKvPlan(int Rows, int Past, int NewTokens, long[] PastSlots, long[] NewSlots, long[] Mask)
{
    /// <summary>Plans a pass over rows given by their block table and past length.</summary>
    /// <param name="rows">Each row's block numbers and the positions it has computed (its past).</param>
    /// <param name="newTokens">Positions each row adds.</param>
    /// <param name="blockSize">Positions per block.</param>
    public static PagedKvPlan Of(IReadOnlyList<(IReadOnlyList<int> Blocks, int Past)> rows, int newTokens, int blockSize)
    {
        var longest = rows.Max(r => r.Past);
        var pastSlots = new long[rows.Count * longest];
        var newSlots = new long[rows.Count * newTokens];
        var mask = new long[rows.Count * (longest + newTokens)];
        for (var r = 0; r < rows.Count; r++)
        {
            var (blocks, past) = rows[r];
            var offset = longest - past;
            for (var q = 0; q < past; q++)
            {
                pastSlots[(r * longest) + offset + q] = Slot(blocks, q, blockSize);
            }

            for (var t = 0; t < newTokens; t++)
            {
                newSlots[(r * newTokens) + t] = Slot(blocks, past + t, blockSize);
            }

            Array.Fill(mask, 1L, (r * (longest + newTokens)) + offset, past + newTokens);
        }

        return new PagedKvPlan(rows.Count, longest, newTokens, pastSlots, newSlots, mask);
    }

    /// <summary>[rows, P] int64 past slots on <paramref name="device"/>, in the caller's dispose scope.</summary>
    public Tensor PastSlotsTensor(Device? device = null) => tensor(PastSlots, device: device).view(Rows, Past);

    /// <summary>[rows, new tokens] int64 new slots on <paramref name="device"/>, in the caller's dispose scope.</summary>
    public Tensor NewSlotsTensor(Device? device = null) => tensor(NewSlots, device: device).view(Rows, NewTokens);

    /// <summary>[rows, P + new tokens] int64 mask on <paramref name="device"/>, in the caller's dispose scope.</summary>
    public Tensor MaskTensor(Device? device = null) => tensor(Mask, device: device).view(Rows, Past + NewTokens);

    private static long Slot(IReadOnlyList<int> blocks, int position, int blockSize) => ((long)blocks[position / blockSize] * blockSize) + (position % blockSize);
}
