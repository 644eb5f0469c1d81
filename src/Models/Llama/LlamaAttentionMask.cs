using DistributedInference.Models.Generation;
using static TorchSharp.torch;

namespace DistributedInference.Models.Llama;

/// <summary>
/// Which keys each query of one forward pass may see (transformers' <c>masking_utils</c>: causal, padding keys
/// masked, optionally a sliding window), shared by every layer, plus the cache the layers read and extend. Masks are
/// boolean [B, 1, T, past + T], true where attention is allowed; null with <see cref="IsCausal"/> when the fused
/// causal path needs none. A query always sees itself, so a padding query never attends to nothing (no NaN); its
/// output is never compared or used.
/// </summary>
public sealed class LlamaAttentionMask
{
    private LlamaAttentionMask(Tensor? full, Tensor? sliding, bool isCausal, KeyValueCache? cache)
    {
        Full = full;
        Sliding = sliding;
        IsCausal = isCausal;
        Cache = cache;
    }

    /// <summary>The mask of full-attention layers, or null.</summary>
    public Tensor? Full { get; }

    /// <summary>The mask of sliding-window layers, or null (same as <see cref="Full"/> when there is no window).</summary>
    public Tensor? Sliding { get; }

    /// <summary>True when a null mask means plain causal attention over the new positions.</summary>
    public bool IsCausal { get; }

    /// <summary>Keys and values of earlier positions, or null.</summary>
    public KeyValueCache? Cache { get; }

    /// <summary>The mask a layer uses.</summary>
    public Tensor? For(bool sliding) => sliding ? Sliding : Full;

    /// <param name="paddingMask">[B, past + T], 1 for real tokens and 0 for padding; null when nothing is padded.</param>
    /// <param name="queryLength">T, the number of new positions.</param>
    /// <param name="cache">Keys and values of earlier positions, or null.</param>
    /// <param name="slidingWindow">The window of sliding layers, or null when the model has none.</param>
    /// <param name="device">Where the masks are built: the device the layers run on.</param>
    /// <exception cref="InvalidInputException">The padding mask does not cover past + T positions.</exception>
    public static LlamaAttentionMask Create(Tensor? paddingMask, long queryLength, KeyValueCache? cache, int? slidingWindow, Device device)
    {
        var past = cache?.Length ?? 0;
        var keys = past + queryLength;
        if (paddingMask is not null && paddingMask.shape[^1] != keys)
        {
            throw new InvalidInputException($"attention_mask covers {paddingMask.shape[^1]} positions, but the cache and input_ids make {keys}");
        }

        var windowMatters = slidingWindow is { } w && keys > w;
        if (paddingMask is null && !windowMatters && (past == 0 || queryLength == 1))
        {
            return new LlamaAttentionMask(null, null, isCausal: past == 0 && queryLength > 1, cache);
        }

        var queryPositions = arange(past, keys, ScalarType.Int64, device).unsqueeze(1);
        var keyPositions = arange(0, keys, ScalarType.Int64, device).unsqueeze(0);
        var allowed = keyPositions.le(queryPositions);
        var self = keyPositions.eq(queryPositions).unsqueeze(0).unsqueeze(0);
        Tensor Finish(Tensor causal)
        {
            var mask = causal.unsqueeze(0).unsqueeze(0);
            if (paddingMask is not null)
            {
                mask = mask.logical_and(paddingMask.to(ScalarType.Bool).unsqueeze(1).unsqueeze(1));
            }

            return mask.logical_or(self);
        }

        var full = Finish(allowed);
        var sliding = windowMatters
            ? Finish(allowed.logical_and(queryPositions.sub(keyPositions).lt(slidingWindow!.Value)))
            : full;
        return new LlamaAttentionMask(full, sliding, isCausal: false, cache);
    }
}
