using DistributedInference.Models.Generation;
using static TorchSharp.torch;

namespace DistributedInference.Models.Gpt2;

/// <summary>
/// What every attention layer of one forward pass shares: which keys each query may see, and the cache to read and
/// extend. Causal without padding uses the fused causal path; padding (or a cache with several new positions)
/// builds an explicit boolean mask, true where attention is allowed.
/// </summary>
public sealed class AttentionContext
{
    private AttentionContext(Tensor? mask, bool isCausal, KeyValueCache? cache)
    {
        Mask = mask;
        IsCausal = isCausal;
        Cache = cache;
    }

    public Tensor? Mask { get; }

    public bool IsCausal { get; }

    public KeyValueCache? Cache { get; }

    /// <param name="paddingMask">[B, past + T], 1 for real tokens and 0 for padding; null when nothing is padded.</param>
    /// <param name="queryLength">T, the number of new positions.</param>
    /// <param name="cache">Keys and values of earlier positions, or null.</param>
    /// <param name="device">Where the mask is built: the device the layers run on.</param>
    public static AttentionContext Create(Tensor? paddingMask, long queryLength, KeyValueCache? cache, Device device)
    {
        var past = cache?.Length ?? 0;
        if (paddingMask is null)
        {
            if (past == 0)
            {
                return new AttentionContext(null, isCausal: queryLength > 1, cache);
            }

            if (queryLength == 1)
            {
                return new AttentionContext(null, isCausal: false, cache);
            }
        }

        var keys = past + queryLength;
        var queryPositions = arange(past, keys, int64, device).unsqueeze(1);
        var keyPositions = arange(0, keys, int64, device).unsqueeze(0);
        var allowed = keyPositions.le(queryPositions).unsqueeze(0).unsqueeze(0);
        if (paddingMask is not null)
        {
            // A query always sees itself, so a padding row never attends to nothing (which would give NaN).
            var self = keyPositions.eq(queryPositions).unsqueeze(0).unsqueeze(0);
            var real = paddingMask.to(ScalarType.Bool).unsqueeze(1).unsqueeze(1);
            allowed = allowed.logical_and(real).logical_or(self);
        }

        return new AttentionContext(allowed, isCausal: false, cache);
    }
}
