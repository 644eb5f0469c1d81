using static TorchSharp.torch;

namespace DistributedInference.Models.Generation;

/// <summary>
/// Moves every row's padding to the left, keeping the order of its real tokens: what generation needs, since new
/// tokens are appended on the right. A right-padded row <c>[36, 0, 0, 0]</c> with mask <c>[1, 0, 0, 0]</c> becomes
/// <c>[0, 0, 0, 36]</c> with mask <c>[0, 0, 0, 1]</c>; left-padded rows are unchanged.
/// </summary>
public static class LeftPadding
{
    /// <param name="inputIds">[B, T] int64.</param>
    /// <param name="attentionMask">[B, T] int64, 1 = real, 0 = padding.</param>
    /// <returns>New ids and mask, [B, T] each, in the caller's dispose scope.</returns>
    public static (Tensor InputIds, Tensor AttentionMask) Apply(Tensor inputIds, Tensor attentionMask)
    {
        // A stable ascending sort of the mask puts the zeros first and keeps the ones in their order.
        var (mask, order) = attentionMask.to(ScalarType.Int64).sort(-1, descending: false, stable: true);
        return (inputIds.gather(1, order), mask);
    }

    /// <summary>Positions as <c>generate</c> feeds them: cumsum(mask) - 1, padded positions set to 1.</summary>
    /// <param name="attentionMask">[B, T] int64.</param>
    /// <returns>[B, T] int64.</returns>
    public static Tensor Positions(Tensor attentionMask) =>
        attentionMask.cumsum(-1).sub(1).masked_fill(attentionMask.eq(0), 1);
}
